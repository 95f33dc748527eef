"""Dataset adapters: each reads one dataset as its publishers ship it and yields `VideoRow`s.

An adapter only knows the layout; ids, validation and the Parquet file are `dfprep.manifest`'s job.
A new built-in adapter is the function NAME of a module NAME here, listed in
`dfprep.adapters.registry.BUILTIN`; the registry and the shared types live in `registry.py`.
"""

from dfprep.adapters.registry import (
    ADAPTERS,
    Adapter,
    AdapterOptions,
    VideoRow,
    check_listed,
    get_adapter,
    register,
)

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterOptions",
    "VideoRow",
    "check_listed",
    "get_adapter",
    "register",
]
