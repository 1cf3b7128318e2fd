"""LiteMesh: an API gateway and edge proxy on asyncio + uvloop + httptools, with Cython hot paths."""
from ._version import __version__

__all__ = ["__version__"]
