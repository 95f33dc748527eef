"""1-FPS sampling (dfprep.sampling) and decoding of videos and frame folders (dfprep.decode)."""

from __future__ import annotations

import dataclasses
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dfprep.config import DecodeConfig
from dfprep.core.errors import ConfigError
from dfprep.decode import DecodeError, open_sampled
from dfprep.sampling import natural_key, plan_seeks, sample_times, select_samples
from dfprep.videoio import as_rate, encode_video
from faults import audio_only, faststart, with_repeat_packets

W, H = 160, 120


def make_frame(i: int) -> np.ndarray:
    """A frame unlike its neighbours: a bar moving down, a column moving right."""
    a = np.full((H, W, 3), 40, np.uint8)
    y = (i * 5) % (H - 10)
    a[y : y + 10] = 220
    x = (i * 7) % (W - 10)
    a[:, x : x + 10, 2] = 255
    return a


def encode(path: Path, n: int, fps, **kw) -> Path:
    return encode_video(path, (make_frame(i) for i in range(n)), fps, **kw)


def expected_samples(frame_times, fps: float) -> list[tuple[int, int]]:
    """The sampling rule the slow way: for each k/fps the first frame at or after it, once."""
    out, used, k = [], set(), 0
    while k / fps <= frame_times[-1] + 1e-9:
        j = next(i for i, t in enumerate(frame_times) if t >= k / fps - 1e-9)
        if j not in used:
            used.add(j)
            out.append((k, j))
        k += 1
    return out


def read_all(path, cfg=None, **kw):
    with open_sampled(path, cfg or DecodeConfig(), **kw) as (info, frames):
        got = list(frames)
    return info, got


def assert_is_frame(image: np.ndarray, j: int, n: int) -> None:
    """The decoded image is closer to source frame j than to any frame near it."""
    cands = range(max(0, j - 4), min(n, j + 5))
    diffs = {c: np.abs(image.astype(int) - make_frame(c)).mean() for c in cands}
    assert min(diffs, key=diffs.get) == j, diffs


def assert_same_frames(a, b) -> None:
    assert [(f.sample_index, f.frame_index, f.time) for f in a] == [
        (f.sample_index, f.frame_index, f.time) for f in b
    ]
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa.image, fb.image)


# ------------------------------------------------------------------------------ pure functions


def test_sample_times():
    assert sample_times(4.0, 1.0) == [0.0, 1.0, 2.0, 3.0]
    assert sample_times(4.004, 1.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert sample_times(1.5, 2.0) == [0.0, 0.5, 1.0]
    assert sample_times(0.3, 1.0) == [0.0]  # shorter than one interval: still the first frame
    assert sample_times(0.0, 1.0) == [0.0]
    with pytest.raises(ValueError, match="fps"):
        sample_times(3.0, 0.0)


def test_select_samples_takes_the_frame_after_a_gap_once():
    times = [0.0, 0.5, 3.2, 3.5, 4.1]
    assert select_samples(times, 1.0) == [(0, 0), (1, 2), (4, 4)]
    assert select_samples(times, 1.0) == expected_samples(times, 1.0)


@pytest.mark.parametrize("fps", [1.0, 2.0, 0.5])
def test_select_samples_matches_the_rule_on_random_vfr_times(fps):
    rng = np.random.default_rng(int(fps * 10))
    for _ in range(20):
        times = np.cumsum(rng.exponential(0.2, 60))
        times = [0.0, *(times - times[0])[1:].tolist()]
        assert select_samples(times, fps) == expected_samples(times, fps)


def test_plan_seeks_follows_keyframe_spacing():
    dense = [float(s) for s in range(60)]  # 1 s GOP, 60 s at 25 fps
    plan = plan_seeks(sample_times(60, 1), dense, 25, 60, min_skip_frames=8, min_saving=0.2)
    assert plan == {k: k for k in range(1, 60)}

    sparse = [0.0, 8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 56.0]  # 8 s GOP: saves at most 1/8
    assert plan_seeks(sample_times(60, 1), sparse, 25, 60, min_skip_frames=8, min_saving=0.2) == {}
    forced = plan_seeks(sample_times(60, 1), sparse, 25, 60, min_skip_frames=0)
    assert forced == {8 * i: i for i in range(1, 8)}

    # keyframes 1.001 s apart sit just after each sample: nothing worth skipping
    ntsc = [1.001 * i for i in range(60)]
    assert plan_seeks(sample_times(60, 1), ntsc, 29.97, 60, min_skip_frames=8) == {}


def test_natural_key_orders_numbers_by_value():
    names = ["10.png", "2.png", "1.png", "frame_10.jpg", "frame_9.jpg", "Frame_11.jpg", "a.png"]
    assert sorted(names, key=natural_key) == [
        "1.png",
        "2.png",
        "10.png",
        "a.png",
        "frame_9.jpg",
        "frame_10.jpg",
        "Frame_11.jpg",
    ]


# --------------------------------------------------------------------------------------- videos


@pytest.mark.parametrize("fps", [25, 30, 29.97])
def test_constant_frame_rate_counts_times_and_content(tmp_path, fps):
    rate = as_rate(fps)
    n = int(3.6 * float(rate))
    path = encode(tmp_path / "v.mp4", n, fps, gop=round(float(rate)))
    frame_times = [float(i / rate) for i in range(n)]
    want = expected_samples(frame_times, 1.0)
    info, got = read_all(path)
    assert (info.width, info.height, info.kind) == (W, H, "video")
    assert info.fps == pytest.approx(float(rate))
    assert info.duration == pytest.approx(n / float(rate))
    assert info.errors == 0
    assert [(f.sample_index, f.frame_index) for f in got] == want
    assert [f.time for f in got] == pytest.approx([frame_times[j] for _, j in want], abs=1e-9)
    for f in got:
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
        assert_is_frame(f.image, f.frame_index, n)


def test_variable_frame_rate(tmp_path):
    times = [i * 0.04 for i in range(30)] + [3.5 + i * 0.1 for i in range(15)]  # a 2.3 s gap
    path = encode_video(
        tmp_path / "vfr.mp4", (make_frame(i) for i in range(len(times))), 25, times=times, gop=10
    )
    want = expected_samples(times, 1.0)
    assert [k for k, _ in want] == [0, 1, 2, 4]  # the frame at 3.5 s serves 2 (and 3) once
    seq_info, seq = read_all(path, DecodeConfig(strategy="sequential"))
    seek_info, seek = read_all(path, DecodeConfig(strategy="seek"))
    assert [(f.sample_index, f.frame_index) for f in seq] == want
    assert [f.time for f in seq] == pytest.approx([times[j] for _, j in want], abs=1e-4)
    for f in seq:
        assert_is_frame(f.image, f.frame_index, len(times))
    assert (seq_info.strategy, seek_info.strategy) == ("sequential", "seek")
    assert_same_frames(seq, seek)


def test_video_shorter_than_one_interval_gives_its_first_frame(tmp_path):
    path = encode(tmp_path / "short.mp4", 10, 25)
    info, got = read_all(path)
    assert info.duration == pytest.approx(0.4)
    assert [(f.sample_index, f.frame_index, f.time) for f in got] == [(0, 0, 0.0)]
    assert_is_frame(got[0].image, 0, 10)


@pytest.fixture(scope="module")
def gop_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("gop")
    return {
        "1s": encode(d / "gop1.mp4", 150, 25, gop=25),  # 6 s, keyframes 1 s apart
        "8s": encode(d / "gop8.mp4", 425, 25, gop=200),  # 17 s, keyframes 8 s apart
    }


@pytest.mark.parametrize("gop, auto_pick", [("1s", "seek"), ("8s", "sequential")])
def test_seek_and_sequential_give_identical_frames(gop_videos, gop, auto_pick):
    path = gop_videos[gop]
    results = {s: read_all(path, DecodeConfig(strategy=s)) for s in ("sequential", "seek", "auto")}
    assert {s: info.strategy for s, (info, _) in results.items()} == {
        "sequential": "sequential",
        "seek": "seek",
        "auto": auto_pick,
    }
    seq = results["sequential"][1]
    assert len(seq) == len(sample_times(results["sequential"][0].duration, 1.0))
    assert_same_frames(seq, results["seek"][1])
    assert_same_frames(seq, results["auto"][1])
    _, threaded = read_all(path, DecodeConfig(strategy="seek"), threads=2)
    assert_same_frames(seq, threaded)


def test_a_failed_seek_restarts_without_seeking(gop_videos, monkeypatch):
    import dfprep.decode as decode

    _, want = read_all(gop_videos["1s"], DecodeConfig(strategy="sequential"))
    real_seek, calls = decode._VideoReader._seek, []

    def seek_that_fails_the_third_time(self, i):
        calls.append(i)
        if len(calls) == 3:
            raise decode._Restart
        return real_seek(self, i)

    monkeypatch.setattr(decode._VideoReader, "_seek", seek_that_fails_the_third_time)
    info, got = read_all(gop_videos["1s"], DecodeConfig(strategy="seek"))
    assert len(calls) == 3
    assert info.strategy == "seek"  # two seeks were used before the restart
    assert_same_frames(got, want)


@pytest.mark.parametrize("container", ["mp4", "ts"])
def test_times_start_at_the_first_frame(tmp_path, container):
    n = 75
    if container == "mp4":  # a stream whose first pts is 5 s
        path = encode_video(
            tmp_path / "late.mp4",
            (make_frame(i) for i in range(n)),
            25,
            times=[5 + i / 25 for i in range(n)],
            gop=25,
        )
    else:  # MPEG-TS starts at a non-zero pts and seeks by dts
        path = encode(tmp_path / "v.ts", n, 25, gop=25)
    with av.open(str(path)) as c:
        assert next(c.decode(video=0)).pts > 0
    _, seq = read_all(path, DecodeConfig(strategy="sequential"))
    seek_info, seek = read_all(path, DecodeConfig(strategy="seek"))
    assert [(f.sample_index, f.frame_index) for f in seq] == [(0, 0), (1, 25), (2, 50)]
    assert [f.time for f in seq] == pytest.approx([0.0, 1.0, 2.0], abs=1e-4)
    assert seek_info.strategy == "seek"
    assert_same_frames(seq, seek)


def test_display_rotation_is_applied_and_the_size_is_the_display_size(tmp_path):
    rotated = encode(tmp_path / "rotated.mp4", 50, 25, gop=25, rotation=90)  # a phone's portrait
    raw_info, raw = read_all(rotated, DecodeConfig(autorotate=False))
    assert (raw_info.width, raw_info.height) == (W, H)  # frames as stored: the stored size
    for f in raw:
        assert_is_frame(f.image, f.frame_index, 50)
    info, got = read_all(rotated)
    assert (info.width, info.height) == (H, W)  # the display size, as the frames and boxes are
    assert [f.image.shape for f in got] == [(W, H, 3)] * len(raw)
    for g, w in zip(got, raw, strict=True):
        np.testing.assert_array_equal(g.image, np.rot90(w.image))


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_stream_that_starts_late_keeps_its_presentation_time(tmp_path, container):
    """Times run from the first frame (the documented rule); pts_time is a player's clock."""
    path = encode(tmp_path / f"late.{container}", 75, 25, gop=25, start=0.85)
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        assert float(first.pts * first.time_base) == pytest.approx(0.85, abs=1e-3)
    for strategy in ("sequential", "seek"):
        _, got = read_all(path, DecodeConfig(strategy=strategy))
        assert [f.time for f in got] == pytest.approx([0.0, 1.0, 2.0], abs=1e-3)
        assert [f.pts_time for f in got] == pytest.approx([0.85, 1.85, 2.85], abs=1e-3)
    _, plain = read_all(encode(tmp_path / "plain.mp4", 50, 25))
    assert [f.pts_time for f in plain] == [f.time for f in plain]


@pytest.mark.parametrize("strategy", ["sequential", "seek"])
def test_empty_packets_repeat_a_frame_and_are_no_error(tmp_path, monkeypatch, strategy):
    """Theora's zero-byte packets ("the previous frame again", written into NUT here: see
    faults.with_repeat_packets) are no undecodable packet, and leave the decoder's skipping of
    unneeded non-reference frames on."""
    import dfprep.decode as decode
    from dfprep.synth import make_face_video

    src = make_face_video(tmp_path / "b.mp4", fps=25, size=(160, 120), seconds=4, gop=25).path
    assert with_repeat_packets(src, tmp_path / "plain.nut", every=0) == 0
    assert with_repeat_packets(src, tmp_path / "repeats.nut", every=3) == 33
    real_decoded, decoded = decode._VideoReader._decoded, []

    def counted(self):
        for frame in real_decoded(self):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(decode._VideoReader, "_decoded", counted)
    runs = {}
    for name in ("plain", "repeats"):
        decoded.clear()
        info, got = read_all(tmp_path / f"{name}.nut", DecodeConfig(strategy=strategy))
        runs[name] = (info, got, len(decoded))
    (info, want, n_plain), (info_r, got, n_repeats) = runs["plain"], runs["repeats"]
    assert info.errors == info_r.errors == 0  # was 33: one "undecodable packet" per repeat
    assert info_r.strategy == strategy
    assert_same_frames(got, want)
    assert n_repeats == n_plain < 100  # non-reference frames still skipped (was: all 100 decoded)


# ------------------------------------------------------------------------------------ bad input


def packet_spans(path: Path) -> list[tuple[int, int, int, bool]]:
    with av.open(str(path)) as c:
        return [(p.pos, p.size, p.pts, p.is_keyframe) for p in c.demux(video=0) if p.size]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s at 25 fps, keyframes 1 s apart, index at the end (PyAV's default)."""
    return encode(tmp_path_factory.mktemp("clip") / "clip.mp4", 100, 25, gop=25)


def make_image(path: Path, fmt: str) -> Path:
    Image.fromarray(make_frame(0)).save(path, format=fmt)
    return path


BAD_INPUTS = {  # name -> (write the file, expected reason)
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "garbage": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "not a video file"),
    "text": (lambda p: p.write_text("just some words\n" * 50), "not a video file"),
    "audio-only": (audio_only, "no video stream (audio-only file)"),
    "png": (lambda p: make_image(p, "PNG"), "still image (png)"),
    "jpeg": (lambda p: make_image(p, "JPEG"), "still image (jpeg)"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_files_raise_a_one_line_reason(tmp_path, name):
    make, reason = BAD_INPUTS[name]
    path = tmp_path / "e.mp4"
    make(path)
    with pytest.raises(DecodeError) as err:
        read_all(path)
    assert reason in err.value.reason
    assert str(err.value) == f"{path}: {err.value.reason}" and "\n" not in str(err.value)


@pytest.mark.parametrize("cut", [16, 600, 0.3, 0.6, 0.95])
def test_truncated_mp4_with_index_at_the_end_is_rejected(tmp_path, clip, cut):
    data = clip.read_bytes()
    size = cut if isinstance(cut, int) else int(len(data) * cut)
    (tmp_path / "t.mp4").write_bytes(data[:size])
    with pytest.raises(DecodeError, match=r"not a video file \(or truncated\)"):
        read_all(tmp_path / "t.mp4")


@pytest.mark.parametrize("cut", [0.3, 0.6])
def test_truncated_mp4_with_index_first_keeps_the_frames_before_the_cut(tmp_path, clip, cut):
    fast = faststart(clip, tmp_path / "fast.mp4")
    data = fast.read_bytes()
    (tmp_path / "t.mp4").write_bytes(data[: int(len(data) * cut)])
    _, full = read_all(fast)
    for strategy in ("sequential", "seek"):
        info, got = read_all(tmp_path / "t.mp4", DecodeConfig(strategy=strategy))
        assert 0 < len(got) < len(full)
        assert info.errors > 0  # the lost packets are counted, not silently dropped
        assert_same_frames(got, full[: len(got)])
    (tmp_path / "head.mp4").write_bytes(data[: packet_spans(fast)[0][0] + 8])  # index, no frames
    with pytest.raises(DecodeError):
        read_all(tmp_path / "head.mp4")


def corrupt(src: Path, dst: Path, which) -> Path:
    data = bytearray(src.read_bytes())
    for pos, size, pts, key in packet_spans(src):
        if which(pts, key):
            data[pos : pos + size] = b"\xff" * size  # an impossible NAL length: the packet fails
    dst.write_bytes(bytes(data))
    return dst


def test_undecodable_packets_mid_stream_are_counted_and_skipped(tmp_path, clip):
    tb = Fraction(1, 12800)  # the mp4 muxer's time base for 25 fps
    bad = corrupt(clip, tmp_path / "bad.mp4", lambda pts, key: not key and 1.2 <= pts * tb <= 1.6)
    _, clean = read_all(clip, DecodeConfig(strategy="sequential"))
    info, got = read_all(bad, DecodeConfig(strategy="sequential"))
    assert info.errors >= 5
    assert len(got) == len(clean) == 4  # frames before (0 s, 1 s) and after (2 s, 3 s) the damage
    assert_same_frames(got, clean)


def test_a_file_where_every_packet_fails_has_no_decodable_frames(tmp_path, clip):
    bad = corrupt(clip, tmp_path / "bad.mp4", lambda pts, key: True)
    with pytest.raises(DecodeError, match="no decodable frames"):
        read_all(bad)


def test_frame_size_over_max_pixels_is_rejected_before_decoding(clip):
    with pytest.raises(DecodeError, match=f"frame size {W}x{H} exceeds max_pixels {W * H - 1}"):
        read_all(clip, DecodeConfig(max_pixels=W * H - 1))


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(DecodeError, match="file not found"):
        read_all(tmp_path / "nope.mp4")
    with pytest.raises(DecodeError, match="is a directory"):
        read_all(tmp_path)


def test_decode_error_survives_pickling():
    err = pickle.loads(pickle.dumps(DecodeError("/x/v.mp4", "empty file")))
    assert (err.path, err.reason, str(err)) == ("/x/v.mp4", "empty file", "/x/v.mp4: empty file")


@pytest.mark.parametrize(
    "change, kind, match",
    [
        ({"strategy": "fast"}, "video", "strategy"),
        ({"fps": 0.0}, "video", "fps"),
        ({}, "audio", "kind"),
        ({"seek_min_saving": 1.5}, "video", "seek_min_saving"),
    ],
)
def test_bad_config_is_a_config_error(clip, change, kind, match):
    with pytest.raises(ConfigError, match=match):
        read_all(clip, dataclasses.replace(DecodeConfig(), **change), kind=kind)


def test_containers_are_always_closed(tmp_path, clip, monkeypatch):
    opened = []
    real_open = av.open

    def is_open(container) -> bool:
        try:
            container.size  # noqa: B018 (raises once closed)
        except AssertionError:
            return False
        return True

    def recording_open(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        assert is_open(opened[-1])
        return opened[-1]

    audio = audio_only(tmp_path / "a.mp4")
    monkeypatch.setattr(av, "open", recording_open)
    read_all(clip, DecodeConfig(strategy="seek"))
    with open_sampled(clip, DecodeConfig()) as (_, frames):
        assert next(frames).sample_index == 0  # leave early
    with pytest.raises(DecodeError):
        read_all(audio)
    with pytest.raises(DecodeError):
        read_all(clip, DecodeConfig(max_pixels=100))
    assert len(opened) >= 6
    assert not any(is_open(c) for c in opened)


# -------------------------------------------------------------------------------- frame folders


def test_frame_folder_natural_order_and_stride(tmp_path):
    for i in range(12):  # unpadded numbers: name order would put 10 and 11 before 2
        Image.fromarray(make_frame(i)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    info, got = read_all(tmp_path, kind="frames", frame_stride=3)
    assert (info.kind, info.strategy, info.width, info.height, info.errors) == (
        "frames",
        "frames",
        W,
        H,
        0,
    )
    assert [(f.sample_index, f.frame_index, f.time) for f in got] == [
        (0, 0, 0.0),
        (1, 3, 3.0),
        (2, 6, 6.0),
        (3, 9, 9.0),
    ]
    for f in got:
        np.testing.assert_array_equal(f.image, make_frame(f.frame_index))


def test_frame_folder_mixed_formats_and_unreadable_images(tmp_path):
    Image.fromarray(make_frame(0)).save(tmp_path / "img_1.JPG", format="JPEG")
    (tmp_path / "img_2.png").write_bytes(b"not a png")
    Image.fromarray(make_frame(3)).convert("L").save(tmp_path / "img_3.bmp")
    Image.fromarray(make_frame(4)).save(tmp_path / "img_10.webp", lossless=True)
    info, got = read_all(tmp_path, kind="frames")
    assert [(f.sample_index, f.frame_index) for f in got] == [(0, 0), (2, 2), (3, 3)]
    assert info.errors == 1
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in got)
    np.testing.assert_array_equal(got[2].image, make_frame(4))


def test_frame_folder_errors(tmp_path):
    with pytest.raises(DecodeError, match="no images"):
        read_all(tmp_path, kind="frames")
    (tmp_path / "a.png").write_bytes(b"broken")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(DecodeError, match="no readable images"):
        read_all(tmp_path, kind="frames")
    with pytest.raises(DecodeError, match="frame folder not found"):
        read_all(tmp_path / "missing", kind="frames")
    with pytest.raises(ConfigError, match="frame_stride"):
        read_all(tmp_path, kind="frames", frame_stride=0)


@pytest.mark.parametrize("strategy, gop", [("sequential", None), ("seek", 25), ("auto", 250)])
def test_skipping_unneeded_nonref_frames_changes_nothing(tmp_path, strategy, gop):
    # x264's default B-frames: about half the frames are never referenced
    from dfprep.synth import make_face_video

    path = make_face_video(
        tmp_path / "b.mp4", fps=25, size=(320, 240), seconds=6.3, gop=gop, seed=4
    ).path
    runs = []
    for skip in (False, True):
        cfg = dataclasses.replace(DecodeConfig(), strategy=strategy, skip_nonref=skip)
        with open_sampled(path, cfg) as (info, frames):
            runs.append([(f.sample_index, f.frame_index, f.time, f.image) for f in frames])
        assert info.errors == 0
    assert len(runs[0]) == len(runs[1]) == 7
    for a, b in zip(runs[0], runs[1], strict=True):
        assert a[:3] == b[:3] and np.array_equal(a[3], b[3])
