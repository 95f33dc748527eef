"""dfprep: deepfake-dataset preprocessing (videos -> 1-FPS face-crop WebDataset shards) on Dask."""

__version__ = "0.1.0"
