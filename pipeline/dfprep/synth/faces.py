"""Real face photographs that ship inside installed packages, and the identities made from them.

Eight people are in the photos: the astronaut of `skimage.data.astronaut()`, the six people of
insightface's group photo `t1.jpg` (left to right) and insightface's `Tom_Hanks_54745.png`.
Identity `i` is base face `i % 8`; identities 8 and up are made-up variants of it (variant
`i // 8`: mirrored when odd, recoloured, framed tighter or looser), derived from `i` alone so an
identity looks the same under every seed. With the default 10 originals: 000 astronaut, 001-006
the t1 faces left to right, 007 Tom Hanks, 008/009 mirrored, recoloured, reframed astronaut/t1_0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from dfprep.core.errors import InputError

# ArcFace's 112x112 five-point template, in the detector's order: eye, eye, nose, mouth, mouth
# (image-left first).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
BASE_IDENTITIES = 8
MIN_SCORE = 0.9


@dataclass(frozen=True)
class SourceFace:
    """One face of a photograph: the photo (RGB) and the face's box and 5 landmarks in its pixels."""

    name: str
    image: np.ndarray
    box: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2)


@dataclass(frozen=True)
class Portrait:
    """A head-and-shoulders cut-out: RGB, its alpha (0..1 float32) and the face in its pixels."""

    name: str
    rgb: np.ndarray
    alpha: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping points src -> dst, as a 2x3 matrix for cv2."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tf = SimilarityTransform.from_estimate(src, dst)
    else:  # pragma: no cover - older scikit-image
        tf = SimilarityTransform()
        tf.estimate(src, dst)
    return np.asarray(tf.params[:2], np.float64)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face warped onto the ArcFace template (size x size), for comparing identities."""
    m = similarity(landmarks, TEMPLATE * (size / 112.0))
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def detect(
    image: np.ndarray, min_score: float = MIN_SCORE, max_size: int = 4096
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(score, box x1y1x2y2, landmarks 5x2) of the faces in an RGB image, left to right.

    Uses the project's default detector backend (`dfprep.detect`, RetinaFace MobileNet) at up to
    `max_size` px; coordinates are rounded to 1/100 px so tiny float differences between machines
    rarely reach the output bytes.
    """
    from dfprep.config import DetectConfig
    from dfprep.detect import get_detector

    cfg = DetectConfig(max_size=max_size, score_threshold=min_score, max_faces=0)
    faces = get_detector(cfg).detect([np.ascontiguousarray(image)])[0]
    out = [
        (
            float(f.score),
            np.round(np.array(f.box, np.float64), 2),
            np.round(np.array(f.landmarks, np.float64).reshape(5, 2), 2),
        )
        for f in faces
    ]
    return sorted(out, key=lambda r: r[1][0])


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"synth: cannot read the bundled photo {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _photos() -> list[tuple[str, np.ndarray, int]]:
    """(name, RGB photo, number of faces expected in it)."""
    import insightface
    import skimage.data

    images = Path(insightface.__file__).parent / "data" / "images"
    return [
        ("astronaut", skimage.data.astronaut(), 1),
        ("t1", _read_rgb(images / "t1.jpg"), 6),
        ("tom_hanks", _read_rgb(images / "Tom_Hanks_54745.png"), 1),
    ]


@functools.lru_cache(maxsize=1)
def base_faces() -> tuple[SourceFace, ...]:
    """The eight real faces, located by the detector (cached: detection runs once per process)."""
    faces: list[SourceFace] = []
    for name, img, expected in _photos():
        found = detect(img)
        if len(found) != expected:
            raise InputError(
                f"synth: expected {expected} face(s) in the bundled photo {name!r}, found {len(found)}"
            )
        for k, (_, box, lms) in enumerate(found):
            label = name if expected == 1 else f"{name}_{k}"
            faces.append(SourceFace(label, img, box, lms))
    return tuple(faces)


def _mirror(rgb: np.ndarray, alpha: np.ndarray, box: np.ndarray, lms: np.ndarray):
    w = rgb.shape[1]
    lms = lms.copy()
    lms[:, 0] = w - 1 - lms[:, 0]
    lms = lms[[1, 0, 2, 4, 3]]  # keep image-left first
    box = np.array([w - 1 - box[2], box[1], w - 1 - box[0], box[3]])
    return rgb[:, ::-1].copy(), alpha[:, ::-1].copy(), box, lms


def _recolour(rgb: np.ndarray, hue: float, sat: float, gamma: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255)
    hsv[..., 2] = 255.0 * (hsv[..., 2] / 255.0) ** gamma
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def make_portrait(face: SourceFace, context: float = 2.0, name: str = "") -> Portrait:
    """Cut a square of `context` x the face size around the face, with a feathered oval alpha.

    Pixels outside the photo get alpha 0 (the background shows) rather than smeared borders.
    """
    x1, y1, x2, y2 = face.box
    side = round(context * max(x2 - x1, y2 - y1))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.1 * (y2 - y1)
    ox, oy = round(cx - side / 2), round(cy - side / 2)
    shift = np.array([[1, 0, -ox], [0, 1, -oy]], np.float64)
    rgb = cv2.warpAffine(face.image, shift, (side, side), borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(
        np.ones(face.image.shape[:2], np.float32), shift, (side, side), borderValue=0.0
    )
    oval = np.zeros((side, side), np.float32)
    cv2.ellipse(
        oval, (side // 2, side // 2), (int(side * 0.42), int(side * 0.47)), 0, 0, 360, 1.0, -1
    )
    alpha = cv2.GaussianBlur(oval * inside, (0, 0), max(1.0, side * 0.04))
    return Portrait(
        name or face.name, rgb, alpha, face.box - [ox, oy, ox, oy], face.landmarks - [ox, oy]
    )


def identity(index: int) -> Portrait:
    """Identity `index` (see the module docstring): a base face or a deterministic variant of it."""
    base = base_faces()[index % BASE_IDENTITIES]
    variant = index // BASE_IDENTITIES
    if variant == 0:
        return make_portrait(base)
    rng = np.random.default_rng([index, 0x5EED])
    p = make_portrait(base, context=float(rng.uniform(1.7, 2.4)), name=f"{base.name}_v{variant}")
    rgb, alpha, box, lms = p.rgb, p.alpha, p.box, p.landmarks
    if variant % 2 == 1:
        rgb, alpha, box, lms = _mirror(rgb, alpha, box, lms)
    rgb = _recolour(
        rgb, float(rng.uniform(-8, 8)), float(rng.uniform(0.7, 1.3)), float(rng.uniform(0.8, 1.25))
    )
    return Portrait(p.name, rgb, alpha, box, lms)
