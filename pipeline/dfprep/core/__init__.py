"""What dfprep and dftrain share: errors, parameter loading and validation, CLI error handling,
system helpers. Nothing here imports the rest of dfprep (or dftrain).

- `dfprep.core.errors`: DfprepError, InputError, ConfigError, WriteError, the exit statuses,
  `first_line`, `one_line`.
- `dfprep.core.config`: the rules of the config dataclasses, `load`, `override`, `build`; the one
  bounded YAML loader (`load_yaml`) and the known top-level sections.
- `dfprep.core.cli`: `handle_errors`, the one error path of both command lines (also for a write
  the disk refused, and SIGTERM).
- `dfprep.core.signals`: Ctrl-C and SIGTERM noticed wherever they land (`Terminated`, exit 143).
- `dfprep.core.system`: `available_cores`, `default_workers`.
- `dfprep.core.outputs`: `output_dir`, `output_file`, `output_figure`: a wrong, read-only or
  unwritable `--out` (or a figure format matplotlib cannot write) is one line, before any work.
- `dfprep.core.lock`: `output_lock`, one run at a time per output folder.
- `dfprep.core.files`: `open_regular`: readers open regular files only (a FIFO never blocks).
- `dfprep.core.owned`: `replacing`: a folder a tool replaces holds only what it wrote.
- `dfprep.core.media`: `VIDEO_EXTS`, `IMAGE_EXTS`, `ARCHIVE_EXTS`, `OTHER_EXTS`, the one set of
  each, and the media rule (`why_not_video`, `scan_tree`, `video_files`): which files are videos.
- `dfprep.core.atomic`: `write_bytes`/`write_text`/`write_json`, `writing_to`, `publish`, `TMP_MARK`:
  every file either package writes goes through it (tmp + fsync + rename + directory fsync);
  `writing` turns a failed write into a one-line `WriteError` naming the file.

The on-disk format of the shards (file names, tar I/O, the sample codec, the tables) is the other
thing both packages share: `dfprep.shards`, which stands on this package and `dfprep.schema` only.
"""
