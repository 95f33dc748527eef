"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""


class DfprepError(Exception):
    """An error caused by the user's input (a path, a file, a parameter); the message names the culprit."""


class InputError(DfprepError):
    """A dataset root, metadata file or manifest that is missing or malformed."""


class ConfigError(DfprepError):
    """An unknown or invalid parameter."""
