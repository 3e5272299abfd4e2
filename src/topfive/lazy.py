"""Names a package exports but imports on first use, so that `topfive --help` and listing the
runtime vocabulary load no torch and no runtime package (PEP 562 module __getattr__)."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """The `__getattr__` for `package`: a name in `exports` is looked up in the submodule it maps
    to (relative to the package), the first time it is asked for."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
