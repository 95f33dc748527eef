"""What one fake's faces are compared against: its original's frames (diff), its mask video, or
nothing (the largest faces), with the reason whenever pairing was asked for but cannot be done.
"""

from __future__ import annotations

import os

import numpy as np

from dfprep.config import ExtractConfig
from dfprep.core.errors import ConfigError, InputError, one_line
from dfprep.pairing.plan import label_blind
from dfprep.pairing.scores import (
    Reference,
    alignment_problem,
    aspect_problem,
    box_to_small,
    diff_scores,
    mask_scores,
    small_grey,
    small_size,
    ssim_scores,
)

__all__ = ["PairSource"]


class PairSource:
    """How one fake's faces are chosen: the source (diff | mask | "" = largest faces), what it
    compares against, and the fallback reason when pairing was asked for but cannot be done."""

    def __init__(self, cfg: ExtractConfig, reference: Reference | None):
        self.cfg = cfg
        self.pc = cfg.pair
        self.reference = reference
        self.source = ""
        self.fallback = ""
        self.reuse_boxes = False
        self.mask: dict[int, tuple[float, np.ndarray]] = {}
        self.mask_path = ""
        self.mask_info = (0.0, 0.0)  # the mask video's (fps, duration), once loaded
        self.aspect_checked: bool | None = None  # False: to check on the first frame

    @property
    def label(self) -> str:
        return self.source or (f"fallback: {self.fallback}" if self.fallback else "")

    def fall_back(self, why: str) -> None:
        self.source, self.fallback, self.reuse_boxes = "", why, False
        self.mask.clear()

    @classmethod
    def for_video(cls, row: dict, cfg: ExtractConfig, reference, shipped: bool) -> PairSource:
        st = cls(cfg, reference)
        select = cfg.pair.select
        original = row.get("original_id") or ""
        st.mask_path = row.get("mask_path") or ""
        if (
            select == "off"
            or int(row["label"]) != 1
            or not (original or st.mask_path)
            or label_blind(row)  # the test split: never compared with its original or mask
        ):
            return st
        if shipped:
            st.fall_back("the faces are shipped crops (nothing to compare)")
            return st
        # auto: the diff when the original is usable (decoded anyway, in the same job), else the
        # mask (a second decode per fake: measured 1.44x the unpaired extract time on the sample,
        # against 1.19x for the diff, with the same 100 % share)
        usable = original and not st._reference_problem(original)
        if select == "mask" or (select == "auto" and st.mask_path and not usable):
            if not st.mask_path:
                st.fall_back("no mask video")
                return st
            st.source = "mask"
        elif not original:  # select diff, a mask only
            st.fall_back("no original")
            return st
        else:
            st.source = "diff"
        if st.source == "diff" or cfg.pair.reuse_original_boxes:
            why = st._reference_problem(original)
            if why and st.source == "diff":
                st.fall_back(why)
                return st
            st.reuse_boxes = cfg.pair.reuse_original_boxes and not why
        st.aspect_checked = False if (st.source == "diff" or st.reuse_boxes) else None
        return st

    def _reference_problem(self, original: str) -> str:
        ref = self.reference
        if ref is None:
            return f"original {original} not in this manifest"
        return ref.error

    def load_mask(self, check) -> None:
        """Decode the mask video at the sample times (small grey frames); a bad one falls back
        to the diff (auto, with an original) or to the largest faces, with the reason."""
        from dfprep.decode import open_sampled

        cfg = self.cfg
        budget = self.pc.max_reference_mb << 20
        used = 0
        try:
            if not os.path.exists(self.mask_path):
                raise InputError(f"file not found: {self.mask_path}")
            with open_sampled(self.mask_path, cfg.decode, threads=max(1, cfg.decode.threads)) as (
                info,
                frames,
            ):
                self.mask_info = (float(info.fps or 0.0), float(info.duration or 0.0))
                for fr in frames:
                    size = small_size(fr.image.shape, self.pc.compare_size)
                    g = small_grey(fr.image, size, blur=False)
                    used += g.nbytes
                    if used > budget:
                        raise InputError(
                            f"mask longer than pair.max_reference_mb ({budget >> 20} MB)"
                        )
                    self.mask[fr.sample_index] = (fr.time, g)
                    check()
        except ConfigError:
            raise
        except Exception as e:
            why = f"mask unreadable: {one_line(e)}"
            if self.pc.select == "auto" and self.reference is not None and not self.reference.error:
                self.source, self.reuse_boxes = "diff", False
                self.mask.clear()
                self.aspect_checked = False
                self.fallback = why
            else:
                self.fall_back(why)

    def check_alignment(self, info) -> None:
        """The fake's frame rate and length against its original's (or its mask's)."""
        fps, duration = float(info.fps or 0.0), float(info.duration or 0.0)
        tol = (self.pc.fps_tolerance, self.pc.duration_tolerance)
        if self.source == "mask":
            mref = Reference("mask", fps=self.mask_info[0], duration=self.mask_info[1])
            why = alignment_problem(fps, duration, mref, *tol, whose="the mask's")
            if why:
                self.fall_back(f"mask: {why}")
                return
        if self.source == "diff" or self.reuse_boxes:
            why = alignment_problem(fps, duration, self.reference, *tol)
            if why and self.source == "diff":
                self.fall_back(why)
            elif why:
                self.reuse_boxes, self.aspect_checked = False, None

    def check_aspect(self, shape) -> None:
        self.aspect_checked = True
        why = aspect_problem(shape, self.reference)
        if why and self.source == "diff":
            self.fall_back(why)
        elif why:
            self.reuse_boxes = False

    def _counterpart(self, frames: dict, fr) -> np.ndarray | None:
        got = frames.get(fr.sample_index)
        if got is None or abs(got[0] - fr.time) > self.pc.time_tolerance:
            return None
        return got[1]

    def original_faces(self, fr) -> list:
        """reuse_original_boxes: the original's faces at this time, in the fake's pixels."""
        from dfprep.detect import Face

        ref = self.reference
        if self._counterpart(ref.frames, fr) is None:
            return []
        sy, sx = fr.image.shape[0] / ref.shape[0], fr.image.shape[1] / ref.shape[1]
        out = []
        for f in ref.faces.get(fr.sample_index, []):
            x1, y1, x2, y2 = f.box
            lms = tuple(v * (sx if i % 2 == 0 else sy) for i, v in enumerate(f.landmarks))
            out.append(Face((x1 * sx, y1 * sy, x2 * sx, y2 * sy), f.score, lms))
        return out

    def compare(self, fr, big: list):
        """(scores of BIG, the faces big enough of frame FR, largest first; the threshold), or
        None when the frame has no counterpart to compare with."""
        if self.source == "mask":
            got = self._counterpart(self.mask, fr)
            if got is None:
                return None
            boxes = [box_to_small(f.box, fr.image.shape, got.shape) for f in big]
            return mask_scores(got, boxes), self.pc.mask_threshold
        got = self._counterpart(self.reference.frames, fr)
        if got is None:
            return None
        small = small_grey(fr.image, (got.shape[1], got.shape[0]))
        boxes = [box_to_small(f.box, fr.image.shape, got.shape) for f in big]
        measure = ssim_scores if self.pc.measure == "ssim" else diff_scores
        return measure(small, got, boxes, self.pc.noise_floor), self.pc.threshold
