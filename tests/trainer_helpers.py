"""Shared by the trainer tests: the tiny ViT they train in seconds on a CPU."""

from dftrain.config import ModelConfig

TINY = ModelConfig(name="vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, drop_path=0.0)
