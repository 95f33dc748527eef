"""dftrain: streaming FSFM ViT fine-tuning on dfprep's WebDataset shards."""

__version__ = "0.1.0"
