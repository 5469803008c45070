"""proxyfs: Python bindings of the proxyfs client library.

A pure-Python package over ``libproxyfs.so.2`` (ctypes; nothing to
compile) in the style of libgfapi-python::

    import proxyfs

    with proxyfs.Volume("default", server="127.0.0.1:9450",
                        uid=1000, gid=1000) as vol:
        vol.makedirs("/reports/2026", exist_ok=True)
        with vol.fopen("/reports/2026/q1.txt", "w") as f:
            f.write("hello\\n")
        for entry in vol.scandir("/reports/2026"):
            print(entry.name, entry.stat().st_size)

:class:`Volume` holds the mount and the path calls; :class:`File` is an
open file (an ``io.RawIOBase``). See ``python/README.md``.
"""

from __future__ import annotations

from typing import Optional

from . import _lib
from .file import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                   FALLOC_FL_ZERO_RANGE, SEEK_DATA, SEEK_HOLE, File)
from .volume import (DEFAULT_BUFFER_SIZE, XATTR_CREATE, XATTR_REPLACE,
                     DirEntry, Error, SameFileError, ScandirIterator, Volume)

__version__ = "2.0.0"


def load_library(path: Optional[str] = None) -> str:
    """Load ``libproxyfs.so.2`` now (else it is loaded at the first mount)
    and return the file loaded. *path* names the file explicitly;
    otherwise the environment variable ``PROXYFS_LIBRARY``, the ``lib``
    directory of the prefix this package was installed in, the dynamic
    loader, ``ctypes.util.find_library`` and the source tree are tried, in
    that order. One library
    per process: ``RuntimeError`` if another is loaded already."""
    return _lib.load(path)._name


def last_error() -> str:
    """The C library's detail on this thread's last failed call ("" if
    none); the ``OSError`` messages include it already."""
    return _lib.last_error()


__all__ = ["Volume", "File", "DirEntry", "ScandirIterator", "Error",
           "SameFileError", "XATTR_CREATE", "XATTR_REPLACE",
           "FALLOC_FL_KEEP_SIZE", "FALLOC_FL_PUNCH_HOLE",
           "FALLOC_FL_ZERO_RANGE", "SEEK_DATA", "SEEK_HOLE",
           "DEFAULT_BUFFER_SIZE", "load_library", "last_error",
           "__version__"]
