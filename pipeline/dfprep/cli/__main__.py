from dfprep.cli import app

app()
