import hashlib
import io
import tarfile

import pyarrow.parquet as pq
import pytest

from dfprep.shards import ShardFiles, ShardWriter, remove_stale_tmp


def _write(dirpath, name="ds-000000", n=3):
    files = ShardFiles(dirpath, name)
    w = ShardWriter(files)
    rows = []
    for i in range(n):
        key = f"vid-a_s{i:05d}_0"
        w.write(key, {"jpg": bytes([i]) * 10, "cls": b"1", "json": b"{}"})
        rows.append(
            {
                "key": key,
                "shard": files.tar.name,
                "video_id": "vid-a",
                "bbox": [0, 0, 1, 1],
                "landmarks": [0.0] * 10,
                "label": 1,
            }
        )
    w.commit(
        rows,
        [{"video_id": "vid-a", "status": "ok", "crops": n}],
        {"params_hash": "abc", "crops": n},
    )
    return files


def test_commit_publishes_everything_and_is_reproducible(tmp_path):
    a = _write(tmp_path / "a")
    b = _write(tmp_path / "b")
    assert a.is_complete("abc") and not a.is_complete("other")
    assert (
        hashlib.sha256(a.tar.read_bytes()).digest() == hashlib.sha256(b.tar.read_bytes()).digest()
    )
    with tarfile.open(a.tar) as tf:
        members = tf.getmembers()
    assert [m.name for m in members][:3] == [
        "vid-a_s00000_0.cls",
        "vid-a_s00000_0.jpg",
        "vid-a_s00000_0.json",
    ]
    assert {m.mtime for m in members} == {0}
    assert pq.read_table(a.index).num_rows == 3
    assert not [p for p in a.dir.iterdir() if p.name.startswith(".")]


def test_abort_leaves_nothing_visible(tmp_path):
    files = ShardFiles(tmp_path, "ds-000001")
    w = ShardWriter(files)
    w.write("k", {"cls": b"0"})
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_leaves_only_tmp_files_which_are_cleaned(tmp_path):
    files = ShardFiles(tmp_path, "ds-000002")
    w = ShardWriter(files)
    w.write("k", {"cls": b"0"})
    w._stream.flush()  # simulate kill -9: no commit, no abort
    assert not files.tar.exists() and not files.is_complete("x")
    assert remove_stale_tmp(tmp_path) == 1
    assert list(tmp_path.iterdir()) == []


def test_failure_during_commit_removes_published_parts(tmp_path, monkeypatch):
    files = ShardFiles(tmp_path, "ds-000003")
    w = ShardWriter(files)
    w.write("k", {"cls": b"0"})

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dfprep.shards.write.pq.write_table", boom)
    with pytest.raises(OSError, match="No space"):
        w.commit([], [], {"params_hash": "x"})
    assert list(tmp_path.iterdir()) == []


def test_tar_is_readable_by_webdataset(tmp_path):
    import webdataset as wds

    files = _write(tmp_path)
    samples = list(wds.WebDataset(str(files.tar), shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == [f"vid-a_s{i:05d}_0" for i in range(3)]
    assert samples[1]["jpg"] == bytes([1]) * 10 and samples[0]["cls"] == b"1"
    assert io.BytesIO(samples[0]["json"]).read() == b"{}"
