"""LiteMesh: an API gateway and edge proxy on asyncio + uvloop + httptools, with Cython hot paths."""
from . import _ext
from ._version import __version__

_ext.prefer_sources()  # the pure build: before any module that may be compiled is imported

__all__ = ["__version__"]
