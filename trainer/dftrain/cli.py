"""dftrain command line: a thin typer layer over the library."""

import typer

app = typer.Typer(help="Train and evaluate deepfake detectors on dfprep shards.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Deepfake detector training (FSFM ViT-B/16 + triplet losses)."""
