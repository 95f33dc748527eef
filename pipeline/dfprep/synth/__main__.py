"""`python -m dfprep.synth ROOT [SEED]`: write the default sample dataset and print its size and time."""

import sys
from pathlib import Path

from dfprep.config import SynthConfig
from dfprep.synth.ffpp import synth_ffpp

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m dfprep.synth ROOT [SEED]")
    cfg = SynthConfig(seed=int(sys.argv[2]) if len(sys.argv) == 3 else 0)
    out = synth_ffpp(Path(sys.argv[1]), cfg)
    print(
        f"{out['files']} files, {out['bytes'] / 1e6:.2f} MB, {out['elapsed_s']:.1f} s -> {out['root']}"
    )
