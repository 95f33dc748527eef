"""User-facing errors (defined in `dfprep.core.errors`; this module keeps the old import path)."""

from dfprep.core.errors import ConfigError, DfprepError, InputError

__all__ = ["ConfigError", "DfprepError", "InputError"]
