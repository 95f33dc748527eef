"""Face detection: real faces with the shipped RetinaFace weights, the insightface wiring with a fake
model, scaling back to source pixels, batching, selection, caching and the errors users see."""

from __future__ import annotations

import dataclasses
import importlib.util
import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from dfprep.config import DetectConfig
from dfprep.core.errors import ConfigError
from dfprep.detect import Face, detection_size, get_detector, select_faces
from fake_insightface import bright_square, build_fake_detector

T1_FACES = 6  # the group photo insightface ships for its own demo


@pytest.fixture(scope="module")
def retina():
    return get_detector(DetectConfig())


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    package = importlib.util.find_spec("insightface").submodule_search_locations[0]
    path = Path(package) / "data" / "images" / "t1.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory) -> Path:
    return build_fake_detector(tmp_path_factory.mktemp("models") / "det_fake.onnx", face=64)


def points(face: Face) -> np.ndarray:
    return np.array(face.landmarks).reshape(5, 2)


def assert_plausible_face(face: Face, image: np.ndarray) -> None:
    x1, y1, x2, y2 = face.box
    h, w = image.shape[:2]
    assert -5 <= x1 < x2 <= w + 5 and -5 <= y1 < y2 <= h + 5
    assert 0.5 < (x2 - x1) / (y2 - y1) < 1.5  # faces are roughly square boxes
    pts = points(face)
    assert np.all((pts[:, 0] > x1) & (pts[:, 0] < x2) & (pts[:, 1] > y1) & (pts[:, 1] < y2))
    right_eye, left_eye, _, right_mouth, left_mouth = pts
    assert max(right_eye[1], left_eye[1]) < min(right_mouth[1], left_mouth[1])  # eyes above mouth
    assert (
        right_eye[0] < left_eye[0] and right_mouth[0] < left_mouth[0]
    )  # subject's right = image left
    assert 0.9 <= face.score <= 1.0


def assert_same_faces(a: list[Face], b: list[Face], tol: float) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_allclose(fa.box, fb.box, atol=tol)
        np.testing.assert_allclose(fa.landmarks, fb.landmarks, atol=tol)
        assert fa.score == pytest.approx(fb.score, abs=1e-3)


# --- default backend: RetinaFace MobileNet-0.25 -------------------------------------------------


def test_finds_the_astronaut(retina, astronaut):
    [faces] = retina.detect([astronaut])
    assert len(faces) == 1
    face = faces[0]
    assert_plausible_face(face, astronaut)
    assert all(isinstance(v, float) for v in (*face.box, face.score, *face.landmarks))
    x1, _, x2, y2 = face.box
    assert 60 < x2 - x1 < 200 and y2 < astronaut.shape[0] / 2  # her face, in the upper half


def test_finds_the_six_faces_of_t1(retina, t1):
    [faces] = retina.detect([t1])
    assert len(faces) == T1_FACES
    for face in faces:
        assert_plausible_face(face, t1)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces]
    for i, (cx, cy) in enumerate(centres):  # six different people, no duplicate boxes
        for ox, oy in centres[i + 1 :]:
            assert abs(cx - ox) + abs(cy - oy) > 50


def test_boxes_map_back_to_source_pixels_of_a_downscaled_frame(retina, astronaut):
    # The astronaut's top, upscaled 3x (nearest) into a 1920x1080 frame: the detector's 640x360 view
    # of that frame holds the original pixels, so its boxes must be 3x the original's plus the offset.
    top = astronaut[:360]
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[:, 192 : 192 + 3 * 512] = np.repeat(np.repeat(top, 3, axis=0), 3, axis=1)
    assert detection_size(1920, 1080, 640) == (640, 360)
    [small], [big] = retina.detect([top]), retina.detect([frame])
    assert len(small) == len(big) == 1
    offset = np.array([192.0, 0.0])
    np.testing.assert_allclose(
        big[0].box, 3 * np.array(small[0].box) + np.tile(offset, 2), atol=2.0
    )
    np.testing.assert_allclose(points(big[0]), 3 * points(small[0]) + offset, atol=2.0)
    assert_plausible_face(big[0], frame)


def test_batches_give_the_same_faces_as_one_by_one(astronaut, t1):
    cfg = DetectConfig(batch_size=2)
    odd = cv2.resize(t1, (1001, 693), interpolation=cv2.INTER_AREA)  # a non-integer scale factor
    images = [t1, astronaut, np.ascontiguousarray(t1[:, ::-1]), astronaut[:300], odd, t1]
    batched = get_detector(cfg).detect(images)
    single = get_detector(dataclasses.replace(cfg, batch_size=1))
    assert len(batched) == len(images)
    for image, faces in zip(images, batched, strict=True):
        assert_same_faces(faces, single.detect([image])[0], tol=0.05)
    assert len(batched[0]) == len(batched[2]) == len(batched[5]) == T1_FACES
    assert len(batched[4]) == T1_FACES


def test_no_faces_and_no_frames(retina):
    assert retina.detect(
        [np.zeros((480, 640, 3), np.uint8), np.full((50, 70, 3), 200, np.uint8)]
    ) == [[], []]
    assert retina.detect([]) == []


def test_detection_size_keeps_aspect_and_never_upscales():
    assert detection_size(1920, 1080, 640) == (640, 360)
    assert detection_size(1080, 1920, 640) == (360, 640)
    assert detection_size(500, 300, 640) == (500, 300)
    assert detection_size(1001, 563, 640) == (640, 360)


def test_bad_frames_are_refused_with_their_index(retina):
    good = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=r"image 1 .*float32"):
        retina.detect([good, good.astype(np.float32)])
    with pytest.raises(ValueError, match=r"image 0 .*shape \(64, 64\)"):
        retina.detect([good[..., 0]])


# --- insightface backend, with a fake model of the same signature ------------------------------


def test_insightface_backend_maps_the_fake_detection_to_source_pixels(fake_model):
    detector = get_detector(DetectConfig(backend="insightface", model_path=str(fake_model)))
    assert detector.name == "insightface"
    frames = [
        bright_square(1280, 720, 576, 256, 128),  # detected at 640x360: the square is 64 px there
        bright_square(1000, 700, 300, 200, 100),  # 640x448: a non-integer scale
        bright_square(640, 480, 100, 90, 64),  # unscaled; the square is off the anchor grid
        np.zeros((720, 1280, 3), np.uint8),
    ]
    found = detector.detect(frames)
    assert [len(f) for f in found] == [1, 1, 1, 0]
    np.testing.assert_allclose(found[0][0].box, (576, 256, 704, 384), atol=1.0)
    np.testing.assert_allclose(found[1][0].box, (300, 200, 400, 300), atol=1.0)
    np.testing.assert_allclose(found[2][0].box, (100, 90, 164, 154), atol=4.0)  # half a stride
    for frame, [face] in zip(frames[:3], found[:3], strict=True):
        assert_plausible_face(face, frame)


def test_insightface_backend_picks_the_detector_in_a_model_pack(fake_model, tmp_path):
    pack = tmp_path / "buffalo_fake"
    pack.mkdir()
    (pack / "w600k_r50.onnx").write_bytes(b"a recognition model, not to be loaded")
    (pack / "det_10g.onnx").write_bytes(fake_model.read_bytes())
    detector = get_detector(DetectConfig(backend="insightface", model_path=str(pack)))
    assert detector.model_file == pack / "det_10g.onnx"
    [[face]] = detector.detect([bright_square(1280, 720, 576, 256, 128)])
    np.testing.assert_allclose(face.box, (576, 256, 704, 384), atol=1.0)


def test_insightface_model_errors_name_the_path(fake_model, tmp_path):
    def load(path: Path | str) -> None:
        get_detector(DetectConfig(backend="insightface", model_path=str(path)))

    with pytest.raises(ConfigError, match=r"nothing is downloaded"):
        load("")
    with pytest.raises(
        ConfigError, match=f"not found: {re.escape(str(tmp_path / 'missing.onnx'))}"
    ):
        load(tmp_path / "missing.onnx")
    (tmp_path / "w600k_r50.onnx").write_bytes(b"x")
    with pytest.raises(ConfigError, match=rf"no detection model .* in {re.escape(str(tmp_path))}$"):
        load(tmp_path)
    (tmp_path / "det_a.onnx").write_bytes(b"not onnx")
    with pytest.raises(ConfigError, match=r"cannot load .*det_a.onnx"):
        load(tmp_path / "det_a.onnx")
    (tmp_path / "scrfd_b.onnx").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"several detection models .*det_a.onnx, scrfd_b.onnx"):
        load(tmp_path)
    with pytest.raises(ConfigError, match=r"not an .onnx file"):
        load(Path(__file__))
    no_landmarks = build_fake_detector(tmp_path / "six.onnx", with_landmarks=False)
    with pytest.raises(ConfigError, match=r"six.onnx has 6 outputs"):
        load(no_landmarks)


# --- selection, caching, configuration ----------------------------------------------------------


def face(x1: float, y1: float, x2: float, y2: float, score: float = 0.99) -> Face:
    return Face(box=(x1, y1, x2, y2), score=score, landmarks=(0.0,) * 10)


def test_select_faces_drops_small_faces_and_keeps_the_largest():
    tiny, thin, medium, large = (
        face(0, 0, 20, 20),
        face(0, 0, 32, 10),
        face(0, 0, 50, 60),
        face(0, 0, 90, 80),
    )
    faces = [medium, tiny, large, thin]
    cfg = DetectConfig(min_face_size=32, max_faces=1)
    assert select_faces(faces, cfg) == [large]
    assert select_faces(faces, dataclasses.replace(cfg, max_faces=2)) == [large, medium]
    assert select_faces(faces, dataclasses.replace(cfg, max_faces=0)) == [large, medium, thin]
    assert select_faces(faces, dataclasses.replace(cfg, min_face_size=100)) == []
    assert select_faces([], cfg) == []
    assert faces == [medium, tiny, large, thin]  # the input is left alone


def test_get_detector_builds_one_detector_per_config(retina):
    assert get_detector(DetectConfig()) is retina
    assert get_detector(DetectConfig(backend="retinaface-mnet", max_size=640)) is retina
    other = get_detector(DetectConfig(score_threshold=0.5))
    assert other is not retina and other.name == retina.name == "retinaface-mnet"
    with pytest.raises(TypeError, match=r"get_detector"):
        pickle.dumps(retina)


def test_config_errors_name_the_parameter():
    with pytest.raises(ConfigError, match=r"unknown backend 'dlib' .*insightface, retinaface-mnet"):
        get_detector(DetectConfig(backend="dlib"))
    with pytest.raises(ConfigError, match=r"detect.batch_size"):
        get_detector(DetectConfig(batch_size=0))
    with pytest.raises(ConfigError, match=r"detect.score_threshold"):
        get_detector(DetectConfig(score_threshold=1.5))
    with pytest.raises(ConfigError, match=r"detect.max_size"):
        get_detector(DetectConfig(max_size=16))


def test_select_faces_breaks_near_ties_of_size_by_score():
    """A dark, blurry face (0.91) 8 % larger than a sharp one (0.975) no longer wins: areas
    within detect.size_tie (10 %) of the largest are a tie, which the score breaks."""
    blurry = face(0, 0, 104, 104, score=0.91)  # area 10816
    sharp = face(200, 0, 300, 100, score=0.975)  # area 10000: 7.5 % smaller
    small = face(400, 0, 470, 70, score=0.999)  # area 4900: not a tie, however sure
    cfg = DetectConfig(max_faces=0)
    assert select_faces([blurry, sharp, small], cfg) == [sharp, blurry, small]
    assert select_faces([small, blurry, sharp], dataclasses.replace(cfg, max_faces=1)) == [sharp]
    # the area alone when size_tie is 0 (the rule before), or beyond the tie
    assert select_faces([sharp, blurry], dataclasses.replace(cfg, size_tie=0.0)) == [blurry, sharp]
    bigger = face(0, 0, 120, 120, score=0.91)  # 44 % larger than the sharp face
    assert select_faces([sharp, bigger], cfg) == [bigger, sharp]
    # each pick looks at what is left, measured against the largest face left
    a, b, c = face(0, 0, 100, 100, 0.90), face(0, 0, 97, 97, 0.95), face(0, 0, 93, 93, 0.99)
    assert select_faces([a, b, c], dataclasses.replace(cfg, size_tie=0.07)) == [b, a, c]
    assert select_faces([a, b, c], dataclasses.replace(cfg, size_tie=0.2)) == [c, b, a]
    with pytest.raises(ConfigError, match=r"detect\.size_tie"):
        DetectConfig(size_tie=1.0)
