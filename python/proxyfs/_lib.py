"""Loading ``libproxyfs.so.2`` with ctypes, its prototypes, and errors.

This module is private: the public API is :mod:`proxyfs`. It declares the
C functions of ``proxyfs.h`` that the package uses, finds the library, and
turns the library's return codes (0 or a positive errno) into ``OSError``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading
from ctypes import (POINTER, byref, c_char_p, c_int, c_int64, c_short,
                    c_size_t, c_uint16, c_uint32, c_uint64, c_void_p)
from typing import Any, NoReturn, Optional, Union

#: The soname this package is written against (``proxyfs.h``, version 2).
SONAME = "libproxyfs.so.2"

#: Environment variable naming the library file to load (a path).
LIBRARY_ENV = "PROXYFS_LIBRARY"

# proxyfs_stat_t: 17 uint64 fields (mode, ino, dev, nlink, uid, gid, size,
# atim, mtim, ctim, crtim as sec/nsec pairs, blocks, blksize): 136 bytes.
STAT_STRUCT = struct.Struct("=17Q")
STAT_SIZE = STAT_STRUCT.size
# proxyfs_dirent_plus_t: ino, cookie, type, name[256], padding, the stat.
DIRENT_PLUS_STRUCT = struct.Struct("=QqB256s7x17Q")

# struct statvfs on Linux (glibc, 64-bit): 11 unsigned longs/fsblkcnt_t.
STATVFS_STRUCT = struct.Struct("=11Q")

# Constants of proxyfs.h.
MOUNT_READ_ONLY = 0x1
SETATTR_SIZE = 0x01
SETATTR_MODE = 0x02
SETATTR_UID = 0x04
SETATTR_GID = 0x08
SETATTR_ATIME = 0x10
SETATTR_MTIME = 0x20
SETATTR_CRTIME = 0x40
SETATTR_ATIME_NOW = 0x80
SETATTR_MTIME_NOW = 0x100
FALLOC_KEEP_SIZE = 0x01
FALLOC_PUNCH_HOLE = 0x02
FALLOC_ZERO_RANGE = 0x10
SEEK_DATA = 3
SEEK_HOLE = 4
COPY_RANGE_MAX = 64 << 20


class Timespec(ctypes.Structure):
    """proxyfs_timespec_t."""

    _fields_ = [("sec", c_uint64), ("nsec", c_uint64)]


class SetAttr(ctypes.Structure):
    """proxyfs_setattr_t."""

    _fields_ = [("size", c_uint64), ("mode", c_uint64), ("uid", c_uint64),
                ("gid", c_uint64), ("atim", Timespec), ("mtim", Timespec),
                ("crtim", Timespec)]


class MountOpts(ctypes.Structure):
    """proxyfs_mount_opts_t (its first version)."""

    _fields_ = [("size", c_size_t), ("server", c_char_p),
                ("volume", c_char_p), ("options", c_uint64),
                ("user", c_char_p), ("uid", c_uint32), ("gid", c_uint32),
                ("ngroups", c_size_t), ("groups", POINTER(c_uint32)),
                ("token", c_char_p), ("token_file", c_char_p),
                ("tls", c_int), ("tls_ca_file", c_char_p),
                ("tls_cert_file", c_char_p), ("tls_key_file", c_char_p)]


#: The most supplementary groups a mount may carry.
MAX_GROUPS = 32

_H = c_void_p  # mount_handle_t *
_P = POINTER
_PROTOTYPES: dict[str, tuple[Any, ...]] = {
    "proxyfs_last_error": (c_char_p,),
    "proxyfs_mount_server": (c_int, c_char_p, c_char_p, c_uint64, c_char_p,
                             c_uint32, c_uint32, _P(_H)),
    "proxyfs_mount_opts": (c_int, _P(MountOpts), _P(_H)),
    "proxyfs_unmount": (c_int, _H),
    "proxyfs_set_mount_timeout": (c_int, _H, c_uint32),
    "proxyfs_max_io_size": (c_int, _H, _P(c_uint64)),
    "proxyfs_lookup_path": (c_int, _H, c_char_p, _P(c_uint64)),
    "proxyfs_create_path": (c_int, _H, c_char_p, c_uint32, _P(c_uint64)),
    "proxyfs_mkdir_path": (c_int, _H, c_char_p, c_uint32),
    "proxyfs_symlink_path": (c_int, _H, c_char_p, c_char_p),
    "proxyfs_read_symlink_path": (c_int, _H, c_char_p, _P(c_void_p)),
    "proxyfs_link_path": (c_int, _H, c_char_p, c_char_p),
    "proxyfs_unlink_path": (c_int, _H, c_char_p),
    "proxyfs_rmdir_path": (c_int, _H, c_char_p),
    "proxyfs_rename_path": (c_int, _H, c_char_p, c_char_p),
    "proxyfs_open": (c_int, _H, c_uint64, c_int, _P(c_uint64)),
    "proxyfs_close": (c_int, _H, c_uint64),
    "proxyfs_flock": (c_int, _H, c_uint64, c_int),
    "proxyfs_stat_path_follow": (c_int, _H, c_char_p, c_void_p),
    "proxyfs_realpath": (c_int, _H, c_char_p, _P(c_void_p), _P(c_uint64)),
    "proxyfs_get_stat": (c_int, _H, c_uint64, _P(c_void_p)),
    "proxyfs_get_stat_path": (c_int, _H, c_char_p, _P(c_void_p)),
    "proxyfs_chmod": (c_int, _H, c_uint64, c_uint32),
    "proxyfs_chown": (c_int, _H, c_uint64, c_uint32, c_uint32),
    "proxyfs_chown_path": (c_int, _H, c_char_p, c_uint32, c_uint32),
    "proxyfs_chmod_path": (c_int, _H, c_char_p, c_uint32),
    "proxyfs_resize": (c_int, _H, c_uint64, c_uint64),
    "proxyfs_setattr": (c_int, _H, c_uint64, c_uint64, _P(SetAttr), c_void_p),
    "proxyfs_setattr_path": (c_int, _H, c_char_p, c_uint64, _P(SetAttr),
                             c_void_p),
    "proxyfs_statvfs": (c_int, _H, _P(c_void_p)),
    "proxyfs_readdir_plus": (c_int, _H, c_uint64, c_int64, _P(c_void_p),
                             _P(c_void_p)),
    "proxyfs_readdir_plus_batch": (c_int, _H, c_uint64, c_int64, c_uint32,
                                   _P(c_void_p), _P(c_size_t), _P(c_int)),
    "proxyfs_read": (c_int, _H, c_uint64, c_uint64, c_uint64, c_void_p,
                     c_size_t, _P(c_size_t)),
    "proxyfs_write": (c_int, _H, c_uint64, c_uint64, c_void_p, c_size_t,
                      _P(c_size_t)),
    "proxyfs_flush": (c_int, _H, c_uint64),
    "proxyfs_fallocate": (c_int, _H, c_uint64, c_int, c_uint64, c_uint64),
    "proxyfs_lseek": (c_int, _H, c_uint64, c_uint64, c_int, _P(c_uint64)),
    "proxyfs_copy_range": (c_int, _H, c_uint64, c_uint64, c_uint64, c_uint64,
                           c_uint64, _P(c_uint64)),
    "proxyfs_get_xattr": (c_int, _H, c_uint64, c_char_p, c_void_p, c_size_t,
                          _P(c_size_t)),
    "proxyfs_get_xattr_path": (c_int, _H, c_char_p, c_char_p, c_void_p,
                               c_size_t, _P(c_size_t)),
    "proxyfs_list_xattr": (c_int, _H, c_uint64, c_void_p, c_size_t,
                           _P(c_size_t)),
    "proxyfs_list_xattr_path": (c_int, _H, c_char_p, c_void_p, c_size_t,
                                _P(c_size_t)),
    "proxyfs_set_xattr": (c_int, _H, c_uint64, c_char_p, c_void_p, c_size_t,
                          c_int),
    "proxyfs_set_xattr_path": (c_int, _H, c_char_p, c_char_p, c_void_p,
                               c_size_t, c_int),
    "proxyfs_remove_xattr": (c_int, _H, c_uint64, c_char_p),
    "proxyfs_remove_xattr_path": (c_int, _H, c_char_p, c_char_p),
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_libc = ctypes.CDLL(None)
_free = _libc.free
_free.argtypes = [c_void_p]
_free.restype = None


def free(ptr: Union[int, c_void_p, None]) -> None:
    """free(3) a pointer the library allocated with malloc()."""
    if ptr:
        _free(ptr)


def _candidates() -> list[str]:
    """Where to look for the library, in order (see :func:`load`)."""
    out = []
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    # Installed by `make install`: PREFIX/lib/python3*/dist-packages/proxyfs
    # beside PREFIX/lib/libproxyfs.so.2 (the library of the same install
    # comes before any other).
    site = os.path.dirname(here)
    if (os.path.basename(site) in ("dist-packages", "site-packages")
            and os.path.basename(os.path.dirname(site)).startswith("python")):
        out.append(os.path.join(os.path.dirname(os.path.dirname(site)),
                                SONAME))
    out.append(SONAME)  # the dynamic loader: LD_LIBRARY_PATH, ld.so.cache
    found = ctypes.util.find_library("proxyfs")
    if found and found.endswith(SONAME):
        out.append(found)
    # The source tree: python/proxyfs beside libproxyfs/.
    out.append(os.path.join(os.path.dirname(site), "libproxyfs", SONAME))
    return out


def load(path: Optional[str] = None) -> ctypes.CDLL:
    """Load the C library once per process and return it.

    The first of these that loads is used: *path* (an explicit file), the
    file named by the environment variable ``PROXYFS_LIBRARY``, the soname
    ``libproxyfs.so.2`` in the ``lib`` directory that ``make install`` put
    this package under (``PREFIX/lib/python3*/dist-packages``), the soname
    through the dynamic loader (``LD_LIBRARY_PATH``, the ``ldconfig``
    cache), ``ctypes.util.find_library("proxyfs")`` if it names that
    soname, and the source tree's ``libproxyfs/`` (for a checkout). A later call with another *path*
    than the loaded one raises ``RuntimeError`` (one library per process).
    Raises ``OSError`` if none loads.
    """
    global _lib
    with _lock:
        if _lib is not None:
            if path is not None and os.path.realpath(path) != \
                    os.path.realpath(_lib._name):
                raise RuntimeError(f"{_lib._name} is loaded already")
            return _lib
        tried = []
        for cand in ([path] if path else _candidates()):
            if os.sep in cand and not os.path.exists(cand):
                tried.append(f"{cand}: not found")
                continue
            try:
                lib = ctypes.CDLL(cand)
            except OSError as e:
                tried.append(str(e))
                continue
            _declare(lib)
            _lib = lib
            return lib
        raise OSError(f"cannot load {SONAME} (set {LIBRARY_ENV}): "
                      + "; ".join(tried))


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, *argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def last_error() -> str:
    """The library's detail on the calling thread's last failure ("" if
    none)."""
    lib = load()
    s = lib.proxyfs_last_error()
    return s.decode("utf-8", "replace") if s else ""


def error(rc: int, filename: Any = None, filename2: Any = None) -> OSError:
    """The ``OSError`` (subclass chosen by errno) for return code *rc*.

    The message is ``os.strerror(rc)``, followed by the library's detail
    (``proxyfs_last_error``) in parentheses when it has one.
    """
    msg = os.strerror(rc)
    detail = last_error()
    if detail:
        msg = f"{msg} ({detail})"
    if filename2 is not None:
        return OSError(rc, msg, filename, None, filename2)
    if filename is not None:
        return OSError(rc, msg, filename)
    return OSError(rc, msg)


def check(rc: int, filename: Any = None, filename2: Any = None) -> None:
    """Raise :func:`error` unless *rc* is 0."""
    if rc:
        raise error(rc, filename, filename2)


def raise_errno(rc: int, msg: str, filename: Any = None) -> NoReturn:
    """Raise an ``OSError`` for *rc* made here (not by the library)."""
    if filename is not None:
        raise OSError(rc, f"{os.strerror(rc)} ({msg})", filename)
    raise OSError(rc, f"{os.strerror(rc)} ({msg})")


def signed64(v: int) -> int:
    """A uint64 read back as the int64 it holds (times before 1970)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def make_stat(t: tuple[int, ...]) -> os.stat_result:
    """An ``os.stat_result`` from the 17 fields of a proxyfs_stat_t."""
    (mode, ino, dev, nlink, uid, gid, size, asec, ansec, msec, mnsec, csec,
     cnsec, _crsec, _crnsec, blocks, blksize) = t
    asec, msec, csec = signed64(asec), signed64(msec), signed64(csec)
    return os.stat_result(
        (mode, ino, dev, nlink, uid, gid, size, asec, msec, csec),
        {"st_atime": asec + ansec * 1e-9, "st_mtime": msec + mnsec * 1e-9,
         "st_ctime": csec + cnsec * 1e-9,
         "st_atime_ns": asec * 1_000_000_000 + ansec,
         "st_mtime_ns": msec * 1_000_000_000 + mnsec,
         "st_ctime_ns": csec * 1_000_000_000 + cnsec,
         "st_blocks": blocks, "st_blksize": blksize})


def stat_from_ptr(ptr: int) -> os.stat_result:
    """Decode the proxyfs_stat_t at *ptr* (not freed here)."""
    return make_stat(STAT_STRUCT.unpack(ctypes.string_at(ptr, STAT_SIZE)))


def take_stat(ptr: c_void_p) -> os.stat_result:
    """Decode a malloc()ed proxyfs_stat_t and free it."""
    try:
        return stat_from_ptr(ptr.value)  # type: ignore[arg-type]
    finally:
        free(ptr)


def take_string(ptr: c_void_p) -> bytes:
    """Copy a malloc()ed NUL-terminated string and free it."""
    try:
        return ctypes.string_at(ptr.value)  # type: ignore[arg-type]
    finally:
        free(ptr)


__all__ = ["load", "last_error", "error", "check", "free", "make_stat",
           "stat_from_ptr", "take_stat", "take_string", "byref", "c_char_p",
           "c_int", "c_short", "c_size_t", "c_uint16", "c_uint64", "c_void_p"]
