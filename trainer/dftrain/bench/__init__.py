"""`dftrain bench` and `dftrain gpu-bench`: measured figures, printed, never asserted by a test.

- `config`: the commands' options as validated frozen dataclasses.
- `train`: the input pipeline's samples/s, our training step against a bare timm loop,
  torch.compile, and the whole `dftrain run` (with the GPU's utilisation, `utilisation`).
- `infer`: `dftrain eval` crops/s and `dftrain predict` seconds per second of video.
- `suite`: all of them at fixed sizes in one run (`dftrain gpu-bench`); `report` its tables.
- `synthetic`: the inputs they run on when no data is given (balance and extract layouts of
  synthetic crops, a face video).
"""
