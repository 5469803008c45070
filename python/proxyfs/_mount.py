"""Mount handles shared by a Volume, its open files and its iterators.

A :class:`Mount` is one ``mount_handle_t`` of the C library, mounted with
one identity (uid, gid). It counts its users: the :class:`~proxyfs.Volume`
while the mount is the volume's current identity, each open
:class:`~proxyfs.File`, each unfinished ``scandir`` iterator and each call
in progress. The handle is unmounted when the count drops to zero, so no
thread ever calls the library with a handle another thread has freed.
"""

from __future__ import annotations

import threading
import ctypes
from ctypes import byref, c_uint32, c_uint64, c_void_p
from typing import NamedTuple, Optional, Tuple

from . import _lib


class Credentials(NamedTuple):
    """What a mount presents besides its uid and gid: supplementary
    groups, a token (or a file holding one) and TLS files, all as the C
    library takes them (``bytes`` paths, ``None`` for unset)."""

    groups: Tuple[int, ...] = ()
    token: Optional[bytes] = None
    token_file: Optional[bytes] = None
    tls: bool = False
    tls_ca_file: Optional[bytes] = None
    tls_cert_file: Optional[bytes] = None
    tls_key_file: Optional[bytes] = None


class Mount:
    """One mounted ``mount_handle_t``; see the module docstring."""

    __slots__ = ("lib", "handle", "uid", "gid", "read_only", "refs",
                 "_lock", "max_io")

    def __init__(self, lib, server: bytes, volname: bytes, user: bytes,
                 uid: int, gid: int, read_only: bool,
                 timeout_ms: Optional[int], creds: Credentials) -> None:
        h = c_void_p()
        o = _lib.MountOpts()
        o.size = ctypes.sizeof(o)
        o.server, o.volume, o.user = server, volname, user
        o.options = _lib.MOUNT_READ_ONLY if read_only else 0
        o.uid, o.gid = uid, gid
        groups = (c_uint32 * max(1, len(creds.groups)))(*creds.groups)
        o.ngroups, o.groups = len(creds.groups), groups
        o.token, o.token_file = creds.token, creds.token_file
        o.tls = 1 if creds.tls else 0
        o.tls_ca_file = creds.tls_ca_file
        o.tls_cert_file = creds.tls_cert_file
        o.tls_key_file = creds.tls_key_file
        rc = lib.proxyfs_mount_opts(byref(o), byref(h))
        _lib.check(rc, volname.decode("utf-8", "replace"))
        self.lib = lib
        self.handle = h
        self.uid = uid
        self.gid = gid
        self.read_only = read_only
        self.refs = 1
        self._lock = threading.Lock()
        if timeout_ms is not None:
            _lib.check(lib.proxyfs_set_mount_timeout(h, timeout_ms))
        size = c_uint64()
        _lib.check(lib.proxyfs_max_io_size(h, byref(size)))
        self.max_io = size.value or (8 << 20)

    def acquire(self) -> bool:
        """Take a reference; False if the handle is already released."""
        with self._lock:
            if self.refs <= 0:
                return False
            self.refs += 1
            return True

    def release(self) -> None:
        """Drop a reference, unmounting on the last one (errors of the
        unmount are raised)."""
        with self._lock:
            self.refs -= 1
            if self.refs != 0:
                return
            h, self.handle = self.handle, None
        _lib.check(self.lib.proxyfs_unmount(h))

    def __enter__(self) -> "Mount":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
