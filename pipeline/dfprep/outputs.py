"""Where a command writes (defined in `dfprep.core.outputs`; this module keeps the old import path)."""

from dfprep.core.outputs import output_dir, output_file

__all__ = ["output_dir", "output_file"]
