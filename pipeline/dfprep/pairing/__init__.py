"""Pairing: a fake's crops come from the faces that were manipulated, found against the original
it was made from (or its mask). See docs/deviations.md.

- `plan`: a fake and its original in the same shard job (pure); `label_blind`: the test split,
  never paired (its crops depend on nothing a detector would not know).
- `scores`: which faces differ: the scores and the original's `Reference` (pure).
- `source`: what one fake is compared against, or why it falls back to the largest faces.
- `select`: the worker's interface, per video: `FaceChooser` (`for_video`, `choose` per frame,
  `finish`).
- `handoff`: the driver's: `JobPairs` / `RunPairs`, which reference goes to which video's task.

Callers outside the package import these names from `dfprep.pairing`.
"""

from dfprep.pairing.handoff import JobPairs, RunPairs
from dfprep.pairing.plan import (
    groups,
    label_blind,
    original_positions,
    pack,
    wants_original,
)
from dfprep.pairing.scores import Reference
from dfprep.pairing.select import FaceChooser, FrameChoice

__all__ = [
    "FaceChooser",
    "FrameChoice",
    "JobPairs",
    "Reference",
    "RunPairs",
    "groups",
    "label_blind",
    "original_positions",
    "pack",
    "wants_original",
]
