"""Sample data with real faces: a FaceForensics++-layout dataset and single-face test videos.

`synth_ffpp(root, cfg)` writes the sample dataset (see `dfprep.synth.ffpp`);
`make_face_video(path, fps, size, seconds, ...)` writes one video whose face position in every
frame is known exactly (a `FaceTrack`).
"""

from dfprep.synth.faces import align_face, identity
from dfprep.synth.ffpp import plan, synth_ffpp
from dfprep.synth.manipulate import METHODS, reenact, swap_face
from dfprep.synth.render import FaceTrack, make_face_video

__all__ = [
    "METHODS",
    "FaceTrack",
    "align_face",
    "identity",
    "make_face_video",
    "plan",
    "reenact",
    "swap_face",
    "synth_ffpp",
]
