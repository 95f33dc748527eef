"""Which faces of one video become crops: the largest faces (the detection rule), or, for a paired
fake, the faces that differ from its original (or are white in its mask). A test-split video is
never paired, and its rule is the same for reals and fakes (`face_limit`).

A paired fake is settled only once all its frames are seen: when no frame showed more than one
face and that face differed in one frame at least, the one person is the one manipulated and every
frame keeps its largest face (`pair.keep_single_person`); otherwise each frame keeps the faces
that differ. So `choose` gives both candidates of a frame and `finish` says which one counts; the
caller crops the candidates while it still has the frame, and never holds frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dfprep.config import ExtractConfig
from dfprep.pairing.plan import label_blind
from dfprep.pairing.scores import Reference
from dfprep.pairing.source import PairSource

__all__ = ["FaceChooser", "FrameChoice", "face_limit"]


def face_limit(row: dict, cfg: ExtractConfig) -> int:
    """Faces kept per frame by the largest-face rule (0 = all): the test split's one rule for
    reals and fakes (`detect.test_max_faces`); elsewhere `real_max_faces` for a real video (when
    set), else `max_faces`."""
    d = cfg.detect
    if label_blind(row):
        return d.test_max_faces
    return d.real_max_faces if int(row["label"]) == 0 and d.real_max_faces >= 0 else d.max_faces


@dataclass
class FrameChoice:
    """One frame's candidates, as (face, manipulation score or None) pairs.

    `kept`: a paired fake's faces that differ (any other video: the largest faces); `largest`:
    the largest faces (what a one-person fake keeps); `dropped`: a paired fake's faces that do not
    differ; `big`: how many faces are big enough to crop (the frame's `faces_in_frame`)."""

    kept: list[tuple]
    largest: list[tuple]
    dropped: list[tuple] = field(default_factory=list)
    big: int = 0

    def faces(self) -> list:
        """Every candidate face once (kept first, then largest), to crop."""
        seen: set[int] = set()
        out = []
        for face, _ in (*self.kept, *self.largest):
            if id(face) not in seen:
                seen.add(id(face))
                out.append(face)
        return out


class FaceChooser:
    """The choice of faces of one video, frame by frame (see the module docstring). An original
    whose fakes follow in its job also records their `reference` as it goes."""

    def __init__(self, row: dict, cfg: ExtractConfig, source: PairSource, shipped: bool):
        self.cfg = cfg
        self.source = source
        self.shipped = shipped  # the frames are the publisher's face crops: all are kept
        self.limit = face_limit(row, cfg)
        self.reference: Reference | None = None
        self.unmatched = 0  # a paired fake's frames without the original's counterpart
        self._seen: list[FrameChoice] = []  # a paired fake's frames, for `finish`

    @classmethod
    def for_video(
        cls,
        row: dict,
        cfg: ExtractConfig,
        reference: Reference | None = None,
        *,
        want_reference: bool = False,
    ) -> FaceChooser:
        """REFERENCE: the original's frames of a paired fake; WANT_REFERENCE: an original whose
        fakes follow (`self.reference` gets its frames and faces)."""
        shipped = row.get("faces") == "shipped"
        chooser = cls(row, cfg, PairSource.for_video(row, cfg, reference, shipped), shipped)
        if want_reference:
            chooser.reference = Reference(row["video_id"])
        return chooser

    @property
    def label(self) -> str:
        """How the faces are chosen: diff | mask | "fallback: why" | "" (not a paired fake)."""
        return self.source.label

    @property
    def paired(self) -> bool:
        return bool(self.source.source)

    def prepare(self, check) -> None:
        """Before the video: a mask source decodes its mask (CHECK: the time limit)."""
        if self.source.source == "mask":
            self.source.load_mask(check)

    def start(self, info) -> None:
        """The video's stream INFO is known: the reference's timing, the fake's alignment."""
        if self.reference is not None:
            self.reference.fps = float(info.fps or 0.0)
            self.reference.duration = float(info.duration or 0.0)
        self.source.check_alignment(info)

    def known_faces(self, batch: list) -> list[list] | None:
        """The faces of a batch of frames when they need no detection (the original's boxes,
        `pair.reuse_original_boxes`), else None."""
        src = self.source
        if src.source and src.aspect_checked is False:
            src.check_aspect(batch[0].image.shape)
        if src.source and src.reuse_boxes:
            return [src.original_faces(f) for f in batch]
        return None

    def choose(self, fr, faces: list) -> FrameChoice:
        """The candidates of one frame FR (a SampledFrame) whose detected faces are FACES."""
        from dfprep.detect import select_faces

        ref = self.reference
        if ref is not None and not ref.error:
            ref.add(fr, faces, self.cfg.pair)
        # every face big enough, largest first; the first `limit` are the largest faces
        big = faces if self.shipped else select_faces(faces, self.cfg.detect, 0)
        largest = big if self.shipped or self.limit <= 0 else big[: self.limit]
        if not self.paired:
            chosen = [(f, None) for f in largest]
            return FrameChoice(chosen, chosen, [], len(big))
        compared = self.source.compare(fr, big)
        if compared is None:  # no counterpart in the original: no crop from this frame
            self.unmatched += 1
            choice = FrameChoice([], [(f, None) for f in largest], [], len(big))
        else:
            choice = self._threshold(big, largest, *compared)
        self._seen.append(choice)
        return choice

    def _threshold(self, big: list, largest: list, scores: list, threshold: float) -> FrameChoice:
        kept = [(f, s) for f, s in zip(big, scores, strict=True) if s >= threshold]
        lost = [(f, s) for f, s in zip(big, scores, strict=True) if s < threshold]
        m = self.cfg.detect.max_faces
        score_of = {id(f): s for f, s in zip(big, scores, strict=True)}
        return FrameChoice(
            kept if m <= 0 else kept[:m],
            [(f, score_of[id(f)]) for f in largest],
            lost,
            len(big),
        )

    def finish(self) -> bool:
        """Whether every frame keeps its `largest` faces (a one-person fake) instead of `kept`."""
        seen, self._seen = self._seen, []
        return (
            self.paired
            and self.cfg.pair.keep_single_person
            and all(c.big <= 1 for c in seen)
            and any(c.kept for c in seen)
        )

    def failed(self, why: str) -> None:
        """The video failed: an original's fakes fall back, saying WHY."""
        if self.reference is not None:
            self.reference.drop(why)
