"""Catch-all stand-in `torchvision` for the PaSST parity-oracle venv only (never our main venv).

hear21passt's weight loader imports `timm` (for `download_cached_file`), and `timm` imports
torchvision image names at module level; the PyPI torchvision fails to import beside the CPU
torch 2.13 build (`torchvision::nms`). PaSST never runs an image API. Every `torchvision.*`
module and every name in it is importable; using a name (calling / instantiating it) raises
NotImplementedError, so nothing can silently depend on this stand-in.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

__version__ = "0.0.0+genau-parity-standin"
IS_STANDIN = True


class _RefusedMeta(type):
    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _refused(f"{cls.__name__}.{name}")


def _refused(name: str) -> type:
    def __init__(self, *a, **k):
        raise NotImplementedError(f"torchvision stand-in: {name} is an image API, not available here")

    return _RefusedMeta(name, (), {"__init__": __init__, "__call__": __init__})


class _AnyModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _refused(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _AnyModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
__getattr__ = _AnyModule.__getattr__.__get__(sys.modules[__name__])  # names on the top-level module too
