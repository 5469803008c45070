"""Volume: a mounted proxyfs volume and its path calls."""

from __future__ import annotations

import ctypes
import errno
import io
import os
import posixpath
import pwd
import shutil
import stat as statmod
import sys
import threading
import weakref
from ctypes import byref, c_int, c_size_t, c_uint64, c_void_p
from typing import (IO, Any, Callable, Iterable, Iterator, NoReturn, Optional,
                    Union)

from . import _lib
from ._mount import Credentials, Mount
from .file import File

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: setxattr flags (Linux's values).
XATTR_CREATE = 0x1
XATTR_REPLACE = 0x2

#: Buffer size of the ``io`` wrappers ``fopen`` makes (text mode, or
#: ``buffering`` of 1 or more in binary mode when not given).
DEFAULT_BUFFER_SIZE = 1 << 20

_DT_DIR, _DT_REG, _DT_LNK = 4, 8, 10
_MAX_XATTR = 64 << 10

Error = shutil.Error
SameFileError = shutil.SameFileError


def _b(name: Union[str, bytes]) -> bytes:
    b = os.fsencode(name)
    if b"\0" in b:
        raise ValueError("embedded null byte")
    return b


class DirEntry:
    """An entry yielded by :meth:`Volume.scandir`, in the manner of
    ``os.DirEntry``.

    Its attributes come from the directory listing itself (the server's
    READDIR_PLUS batches carry every entry's attributes): :meth:`stat`,
    :meth:`is_dir`, :meth:`is_file`, :meth:`is_symlink` and :meth:`inode`
    make no call, except with ``follow_symlinks=True`` on a symlink, which
    stats the target once (then cached). ``follow_symlinks`` defaults to
    False, unlike ``os.DirEntry``, so that no call is made by default.
    """

    __slots__ = ("name", "_prefix", "_raw", "_lstat", "_stat", "_vol")

    def __init__(self, vol: "Volume", name: Union[str, bytes],
                 prefix: Union[str, bytes], raw: tuple[int, ...]) -> None:
        """Made by :meth:`Volume.scandir` (*raw*: the 17 fields of the
        entry's proxyfs_stat_t), not by callers."""
        self._vol = vol
        #: The entry's name (str or bytes, as the path given to scandir).
        self.name = name
        self._prefix = prefix
        self._raw = raw  # the 17 fields of the proxyfs_stat_t
        self._lstat: Optional[os.stat_result] = None
        self._stat: Optional[os.stat_result] = None

    @property
    def path(self) -> Union[str, bytes]:
        """The scandir path joined with :attr:`name`."""
        return posixpath.join(self._prefix, self.name)

    def __repr__(self) -> str:
        return f"<proxyfs.DirEntry {self.name!r}>"

    def __fspath__(self) -> Union[str, bytes]:
        return self.path

    def inode(self) -> int:
        """The entry's inode number."""
        return self._raw[1]

    def stat(self, follow_symlinks: bool = False) -> os.stat_result:
        """The entry's attributes (those of a symlink itself unless
        *follow_symlinks*)."""
        if follow_symlinks and statmod.S_ISLNK(self._raw[0]):
            if self._stat is None:
                self._stat = self._vol.stat(self.path)
            return self._stat
        if self._lstat is None:
            self._lstat = _lib.make_stat(self._raw)
        return self._lstat

    def _test(self, pred: Callable[[int], bool], follow: bool) -> bool:
        if not follow or not statmod.S_ISLNK(self._raw[0]):
            return pred(self._raw[0])
        try:
            return pred(self.stat(follow_symlinks=True).st_mode)
        except FileNotFoundError:
            return False

    def is_dir(self, follow_symlinks: bool = False) -> bool:
        """True for a directory (or a symlink to one with
        *follow_symlinks*)."""
        return self._test(statmod.S_ISDIR, follow_symlinks)

    def is_file(self, follow_symlinks: bool = False) -> bool:
        """True for a regular file (or a symlink to one with
        *follow_symlinks*)."""
        return self._test(statmod.S_ISREG, follow_symlinks)

    def is_symlink(self) -> bool:
        """True for a symbolic link (dangling or not)."""
        return statmod.S_ISLNK(self._raw[0])


_FSENC = sys.getfilesystemencoding()


# Entries fetched per proxyfs_readdir_plus_batch request.
_BATCH = 1024


class ScandirIterator:
    """The iterator :meth:`Volume.scandir` returns; also a context manager
    (``close`` ends the listing early)."""

    def __init__(self, vol: "Volume", path: Any) -> None:
        """Start listing directory *path* of *vol* (made by
        :meth:`Volume.scandir`); raises ``OSError`` if it is not one."""
        self._vol = vol
        self._arg = path
        self._prefix = os.fspath(path)
        self._bytes = isinstance(self._prefix, bytes)
        b = vol._abs(path)
        self._m: Optional[Mount] = vol._acquire()
        try:
            st = vol._stat_follow(self._m, b, path)
            if not statmod.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        except BaseException:
            self.close()
            raise
        self._ino = st.st_ino
        self._cookie = -1
        self._eof = False
        self._batch: list[tuple[bytes, tuple[int, ...]]] = []
        self._next = 0

    def __iter__(self) -> "ScandirIterator":
        return self

    def _next_raw(self) -> Optional[tuple[bytes, tuple[int, ...]]]:
        """The next entry's name and stat fields, or None at the end. The
        entries come a batch at a time (one ``proxyfs_readdir_plus_batch``
        request each)."""
        if self._m is None:
            return None
        while self._next >= len(self._batch):
            if self._eof or not self._fetch():
                self.close()
                return None
        ent = self._batch[self._next]
        self._next += 1
        return ent

    def _fetch(self) -> bool:
        """Fetch the next batch; False when the directory has no more."""
        m = self._m
        if m is None:
            return False
        ents, n, eof = c_void_p(), c_size_t(), c_int()
        rc = m.lib.proxyfs_readdir_plus_batch(
            m.handle, self._ino, self._cookie, _BATCH, byref(ents), byref(n),
            byref(eof))
        if rc:
            err = _lib.error(rc, self._arg)
            self.close()
            raise err
        self._eof = bool(eof.value)
        self._next = 0
        self._batch = []
        if not n.value:
            return False
        try:
            size = _lib.DIRENT_PLUS_STRUCT.size
            raw = ctypes.string_at(ents.value, size * n.value)
        finally:
            _lib._free(ents.value)
        for f in _lib.DIRENT_PLUS_STRUCT.iter_unpack(raw):
            name = f[3].split(b"\0", 1)[0]
            self._cookie = f[1]
            if name != b"." and name != b"..":
                self._batch.append((name, f[4:]))
        return True

    def __next__(self) -> DirEntry:
        raw = self._next_raw()
        if raw is None:
            raise StopIteration
        name = raw[0] if self._bytes else raw[0].decode(_FSENC,
                                                        "surrogateescape")
        return DirEntry(self._vol, name, self._prefix, raw[1])

    def close(self) -> None:
        """Stop listing and release the mount reference."""
        m, self._m = self._m, None
        if m is not None:
            m.release()

    def __enter__(self) -> "ScandirIterator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Volume:
    """A proxyfs volume, mounted through ``libproxyfs.so.2``.

    ``Volume("default", server="127.0.0.1:9450", uid=1000, gid=1000)``
    describes the mount; :meth:`mount` makes it (or use ``with Volume(...)
    as vol``, which mounts and unmounts). Every call's permissions are
    checked by the server against the identity the volume is mounted with
    (*uid*, *gid*; no supplementary groups are sent), which also owns what
    the volume creates; :meth:`setfsuid` and :meth:`setfsgid` change it.

    Paths are ``str``, ``bytes`` or ``os.PathLike``, absolute from the
    volume's root or relative to :meth:`getcwd` (initially ``/``). Names
    come back as ``str`` for a ``str`` argument and ``bytes`` for a
    ``bytes`` one (undecodable bytes as surrogate escapes, like ``os``).
    Failures raise ``OSError`` subclasses with the errno and the path
    (``FileNotFoundError``, ``PermissionError``, ...). Calls on an
    unmounted volume raise ``OSError(ENOTCONN)``.

    A Volume may be used by any number of threads at once: the C library
    is thread-safe and pipelines their requests, and ctypes releases the
    GIL during each call. The C library reconnects, remounts and reopens
    the open files when the daemon restarts; calls wait for it (up to
    *timeout*).
    """

    def __init__(self, volname: str,
                 server: Union[str, Iterable[str], None] = None,
                 uid: Optional[int] = None, gid: Optional[int] = None,
                 user: Optional[str] = None, read_only: bool = False,
                 timeout: Optional[float] = None, umask: int = 0o022,
                 library: Optional[str] = None,
                 groups: Optional[Iterable[int]] = None,
                 token: Optional[str] = None,
                 token_file: Optional[Any] = None, tls: bool = False,
                 tls_ca_file: Optional[Any] = None,
                 tls_cert_file: Optional[Any] = None,
                 tls_key_file: Optional[Any] = None) -> None:
        """Describe a mount (nothing is contacted until :meth:`mount`).

        :param volname: the volume's name in the daemon's configuration.
        :param server: where proxyfsd listens: ``"HOST:PORT"``,
            ``"unix:/path"`` or ``"/path"``; default the environment
            variable ``PROXYFS_SERVER``, else ``"127.0.0.1:9450"``. Several
            gateways of one volume (the etcdswift engine) are a list of
            addresses, or one string of them separated by commas: the
            library uses one at a time and moves to the next when it
            cannot reach it, reopening the open files and reclaiming the
            locks there (README, "Volumes on etcd and Swift").
        :param uid: the identity of the calls (default: this process's
            effective uid).
        :param gid: its group (default: this process's effective gid).
        :param user: the user name sent at mount (default: the name of
            *uid* in the password database, else the number).
        :param read_only: mount read-only (writes raise EROFS).
        :param timeout: seconds a call may take, reconnecting included,
            before ETIMEDOUT (default: the library's, 30 s).
        :param umask: bits cleared from the modes of files and directories
            this volume creates (as the process umask does for ``os``).
        :param library: an explicit path of ``libproxyfs.so.2`` (see
            :func:`proxyfs.load_library`).
        :param groups: supplementary groups of the identity (at most 32;
            default none), which the server's permission checks use as
            the kernel uses a process's groups.
        :param token: a token of the daemon's tokens file: every
            connection authenticates with it, and the daemon treats the
            mount as the token's principal (whom it may act as). Default:
            ``PROXYFS_TOKEN`` or the file ``PROXYFS_TOKEN_FILE``, else no
            token (the daemon goes by the peer's credentials).
        :param token_file: a file whose first line is the token (read at
            :meth:`mount`); at most one of *token* and *token_file*.
        :param tls: speak TLS to a daemon whose TCP listener has
            ``tls_cert`` (implied by any of the three files below).
        :param tls_ca_file: CA certificates (PEM) that verify the
            daemon's certificate (default: the system's); the certificate
            must name the host of *server*, which must be ``HOST:PORT``.
        :param tls_cert_file: a client certificate (PEM), for a daemon
            with ``tls_client_ca``; with *tls_key_file*.
        :param tls_key_file: the client certificate's key (PEM).

        A token or certificate the daemon refuses, or a daemon
        certificate that does not verify, makes :meth:`mount` raise
        ``PermissionError`` (EACCES).
        """
        if token is not None and token_file is not None:
            raise ValueError("token and token_file are exclusive")
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        gs = tuple(int(g) for g in (groups or ()))
        if len(gs) > _lib.MAX_GROUPS:
            raise ValueError(f"at most {_lib.MAX_GROUPS} groups")

        def path(p: Any) -> Optional[bytes]:
            return None if p is None else os.fsencode(p)

        self._creds = Credentials(
            groups=gs, token=None if token is None else token.encode(),
            token_file=path(token_file), tls=bool(tls),
            tls_ca_file=path(tls_ca_file), tls_cert_file=path(tls_cert_file),
            tls_key_file=path(tls_key_file))
        self.volname = volname
        if server is not None and not isinstance(server, str):
            server = ",".join(server)
        self.server = server or os.environ.get("PROXYFS_SERVER") \
            or "127.0.0.1:9450"
        self._uid = os.geteuid() if uid is None else uid
        self._gid = os.getegid() if gid is None else gid
        self._user = user
        self.read_only = read_only
        self.timeout = timeout
        self.umask = umask
        self._library = library
        self._lock = threading.RLock()
        self._mounted = False
        self._cur: Optional[Mount] = None
        self._cwd = b"/"
        self._files: "weakref.WeakSet[File]" = weakref.WeakSet()

    # ------------------------------------------------------------ mounting

    @property
    def mounted(self) -> bool:
        """True between :meth:`mount` and :meth:`umount`."""
        return self._mounted

    @property
    def uid(self) -> int:
        """The uid calls are made as (see :meth:`setfsuid`)."""
        return self._uid

    @property
    def gid(self) -> int:
        """The gid calls are made as (see :meth:`setfsgid`)."""
        return self._gid

    def _user_name(self, uid: int) -> bytes:
        if self._user is not None:
            return self._user.encode()
        try:
            return pwd.getpwuid(uid).pw_name.encode()
        except KeyError:
            return str(uid).encode()

    def _new_mount(self, uid: int, gid: int) -> Mount:
        lib = _lib.load(self._library)
        ms = None if self.timeout is None else max(1, int(self.timeout * 1000))
        return Mount(lib, self.server.encode(), self.volname.encode(),
                     self._user_name(uid), uid, gid, self.read_only, ms,
                     self._creds)

    def mount(self) -> None:
        """Mount the volume (``proxyfs_mount_opts``); mounting a mounted
        volume does nothing. Raises ``OSError``: ENODEV (no daemon at
        :attr:`server`), ENOENT (no such volume), ETIMEDOUT, ..."""
        with self._lock:
            if self._mounted:
                return
            self._cur = self._new_mount(self._uid, self._gid)
            self._mounted = True

    def umount(self) -> None:
        """Close the volume's open files and unmount it; unmounting an
        unmounted volume does nothing. Calls still running finish first
        (the handle is released by the last of them)."""
        with self._lock:
            if not self._mounted:
                return
            self._mounted = False
            files = list(self._files)
        first: Optional[BaseException] = None
        for f in files:
            try:
                f.close()
            except OSError as e:
                first = first or e
        with self._lock:
            cur, self._cur = self._cur, None
        if cur is not None:
            cur.release()
        if first is not None:
            raise first

    unmount = umount

    def __enter__(self) -> "Volume":
        self.mount()
        return self

    def __exit__(self, *exc: object) -> None:
        self.umount()

    def __del__(self) -> None:
        try:
            if self._mounted:
                self.umount()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (f"<proxyfs.Volume {self.volname!r} at {self.server!r} "
                f"uid={self._uid} gid={self._gid}"
                f"{'' if self._mounted else ' (not mounted)'}>")

    def set_logging(self, log_file: Optional[str] = None,
                    log_level: int = 0) -> None:
        """Accepted for compatibility and ignored: the C library never
        logs (failures are raised, with the library's detail in the
        message; see :func:`proxyfs.last_error`)."""

    def disable_logging(self) -> None:
        """Accepted for compatibility and ignored (see
        :meth:`set_logging`)."""

    def get_volume_id(self) -> NoReturn:
        """Not supported: the daemon exposes no volume UUID. Raises
        ``OSError(ENOTSUP)``. ``stat("/").st_dev`` (and
        ``statvfs().f_fsid``) identify the volume instead."""
        raise OSError(errno.ENOTSUP, "proxyfs volumes have no UUID; use "
                      "stat('/').st_dev", self.volname)

    def _acquire(self) -> Mount:
        """A reference to the mount of the current identity (mounted now
        if the identity changed), which the caller releases."""
        with self._lock:
            if not self._mounted:
                raise OSError(errno.ENOTCONN, "volume not mounted",
                              self.volname)
            cur = self._cur
            if cur is None or cur.uid != self._uid or cur.gid != self._gid:
                new = self._new_mount(self._uid, self._gid)
                self._cur = new
                if cur is not None:
                    try:
                        cur.release()  # unmounted when its users are done
                    except OSError:
                        pass  # the old identity's unmount: nothing to do
                cur = new
            cur.acquire()
            return cur

    def _forget(self, f: File) -> None:
        self._files.discard(f)

    def setfsuid(self, uid: int) -> int:
        """Make the calls that follow run as *uid*; returns the previous
        uid.

        The server checks permissions per mount, so the volume mounts
        again with the new identity at its next call (the C library does
        not yet send an identity per call). Files opened before keep the
        identity they were opened with. Raises ``OSError`` at that next
        call if the mount fails.
        """
        with self._lock:
            old, self._uid = self._uid, int(uid)
            return old

    def setfsgid(self, gid: int) -> int:
        """Make the calls that follow run with group *gid*; returns the
        previous gid. As :meth:`setfsuid`."""
        with self._lock:
            old, self._gid = self._gid, int(gid)
            return old

    # ------------------------------------------------------------ paths

    def _abs(self, path: Any) -> bytes:
        b = _b(os.fspath(path))
        if not b:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT),
                                    path)
        if b.startswith(b"/"):
            return b
        with self._lock:
            cwd = self._cwd
        return cwd.rstrip(b"/") + b"/" + b

    def _call(self, fname: str, *args: Any, filename: Any = None,
              filename2: Any = None) -> None:
        m = self._acquire()
        try:
            rc = getattr(m.lib, fname)(m.handle, *args)
        finally:
            m.release()
        if rc:
            raise _lib.error(rc, filename, filename2)

    def _stat_follow(self, m: Mount, b: bytes, path: Any) -> os.stat_result:
        buf = ctypes.create_string_buffer(_lib.STAT_SIZE)
        rc = m.lib.proxyfs_stat_path_follow(m.handle, b, buf)
        if rc:
            raise _lib.error(rc, path)
        return _lib.make_stat(_lib.STAT_STRUCT.unpack(buf.raw))

    def _lstat(self, m: Mount, b: bytes, path: Any) -> os.stat_result:
        p = c_void_p()
        rc = m.lib.proxyfs_get_stat_path(m.handle, b, byref(p))
        if rc:
            raise _lib.error(rc, path)
        return _lib.take_stat(p)

    def _target_ino(self, m: Mount, b: bytes, path: Any) -> int:
        return self._stat_follow(m, b, path).st_ino

    def stat(self, path: PathLike) -> os.stat_result:
        """stat(2): the attributes of *path*, following symlinks."""
        with self._acquire() as m:
            return self._stat_follow(m, self._abs(path), path)

    def lstat(self, path: PathLike) -> os.stat_result:
        """lstat(2): the attributes of *path*, a symlink's own."""
        with self._acquire() as m:
            return self._lstat(m, self._abs(path), path)

    def exists(self, path: PathLike) -> bool:
        """True if *path* exists (False for a dangling symlink, and for any
        error, as ``os.path.exists``)."""
        try:
            self.stat(path)
            return True
        except (OSError, ValueError):
            return False

    def _mode_is(self, path: PathLike, pred: Callable[[int], bool],
                 follow: bool = True) -> bool:
        try:
            st = self.stat(path) if follow else self.lstat(path)
        except (OSError, ValueError):
            return False
        return pred(st.st_mode)

    def isdir(self, path: PathLike) -> bool:
        """True if *path* is a directory (following symlinks); False on
        any error."""
        return self._mode_is(path, statmod.S_ISDIR)

    def isfile(self, path: PathLike) -> bool:
        """True if *path* is a regular file (following symlinks); False on
        any error."""
        return self._mode_is(path, statmod.S_ISREG)

    def islink(self, path: PathLike) -> bool:
        """True if *path* is a symbolic link; False on any error."""
        return self._mode_is(path, statmod.S_ISLNK, follow=False)

    def getsize(self, path: PathLike) -> int:
        """The size of *path* in bytes (from :meth:`stat`)."""
        return self.stat(path).st_size

    def getatime(self, path: PathLike) -> float:
        """The last access time of *path*, seconds since the epoch."""
        return self.stat(path).st_atime

    def getmtime(self, path: PathLike) -> float:
        """The last modification time of *path*'s data."""
        return self.stat(path).st_mtime

    def getctime(self, path: PathLike) -> float:
        """The last change time of *path*'s inode (``st_ctime``: on Unix
        not the creation time)."""
        return self.stat(path).st_ctime

    def samefile(self, path1: PathLike, path2: PathLike) -> bool:
        """True if both paths name the same file (device and inode)."""
        a, b = self.stat(path1), self.stat(path2)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def realpath(self, path: PathLike) -> Union[str, bytes]:
        """The canonical absolute path of *path* within the volume, every
        symlink followed (``proxyfs_realpath``)."""
        out = c_void_p()
        self._call("proxyfs_realpath", self._abs(path), byref(out), None,
                   filename=path)
        b = _lib.take_string(out)
        return b if isinstance(os.fspath(path), bytes) else os.fsdecode(b)

    def chdir(self, path: PathLike) -> None:
        """Make *path* (a directory) the base of relative paths. Stored as
        its canonical path (symlinks resolved)."""
        out = c_void_p()
        self._call("proxyfs_realpath", self._abs(path), byref(out), None,
                   filename=path)
        real = _lib.take_string(out)
        if not self.isdir(real):
            raise NotADirectoryError(errno.ENOTDIR,
                                     os.strerror(errno.ENOTDIR), path)
        with self._lock:
            self._cwd = real

    def getcwd(self) -> str:
        """The base of relative paths (``/`` at first)."""
        with self._lock:
            return os.fsdecode(self._cwd)

    # ------------------------------------------------------------ directories

    def scandir(self, path: PathLike = ".") -> ScandirIterator:
        """An iterator of :class:`DirEntry` for the entries of directory
        *path* (without ``.`` and ``..``), in the server's order. The
        entries' attributes come with the listing, in batches (the C
        library's ``proxyfs_readdir_plus_batch``): no call per entry."""
        return ScandirIterator(self, path)

    opendir = scandir

    def listdir(self, path: PathLike = ".") -> list[Any]:
        """The names in directory *path* (without ``.`` and ``..``)."""
        it = ScandirIterator(self, path)
        out: list[Any] = []
        dec = not it._bytes
        with it:
            while True:
                raw = it._next_raw()
                if raw is None:
                    return out
                out.append(raw[0].decode(_FSENC, "surrogateescape")
                           if dec else raw[0])

    def listdir_with_stat(self, path: PathLike = ".") \
            -> list[tuple[Any, os.stat_result]]:
        """``(name, stat)`` for each entry of directory *path*; the stats
        are the entries' own (a symlink's, not its target's) and come with
        the listing."""
        it = ScandirIterator(self, path)
        out = []
        dec = not it._bytes
        with it:
            while True:
                raw = it._next_raw()
                if raw is None:
                    return out
                name = (raw[0].decode(_FSENC, "surrogateescape") if dec
                        else raw[0])
                out.append((name, _lib.make_stat(raw[1])))

    def walk(self, top: PathLike, topdown: bool = True,
             onerror: Optional[Callable[[OSError], None]] = None,
             followlinks: bool = False) \
            -> Iterator[tuple[Any, list[Any], list[Any]]]:
        """Yield ``(dirpath, dirnames, filenames)`` for each directory of the
        tree at *top*, as ``os.walk``: *topdown* lets the caller prune
        ``dirnames``; *onerror* gets the ``OSError`` of a directory that
        cannot be listed (else it is skipped); symlinks to directories
        are listed in ``dirnames`` and entered only with *followlinks*.
        Each directory is listed once with :meth:`scandir` (no stat per
        entry, except a symlink's target's)."""
        stack: list[Any] = [os.fspath(top)]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                yield item
                continue
            dirs, files, walk_into = [], [], []
            try:
                with self.scandir(item) as it:
                    entries = list(it)
            except OSError as e:
                if onerror is not None:
                    onerror(e)
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=True):
                    dirs.append(e.name)
                    if followlinks or not e.is_symlink():
                        walk_into.append(e.path)
                else:
                    files.append(e.name)
            if topdown:
                yield item, dirs, files
                names = set(dirs)
                for p in reversed(walk_into):
                    if posixpath.basename(p) in names:
                        stack.append(p)
            else:
                stack.append((item, dirs, files))
                for p in reversed(walk_into):
                    stack.append(p)

    def mkdir(self, path: PathLike, mode: int = 0o777) -> None:
        """Create directory *path* with *mode* less the volume's umask."""
        self._call("proxyfs_mkdir_path", self._abs(path),
                   mode & ~self.umask & 0o7777, filename=path)

    def makedirs(self, name: PathLike, mode: int = 0o777,
                 exist_ok: bool = False) -> None:
        """Create directory *name* and its missing parents, as
        ``os.makedirs``; FileExistsError if it exists and not
        *exist_ok*."""
        p = os.fspath(name)
        head, tail = posixpath.split(p)
        if not tail:
            head, tail = posixpath.split(head)
        if head and tail and not self.exists(head):
            try:
                self.makedirs(head, mode, exist_ok=True)
            except FileExistsError:
                pass
        try:
            self.mkdir(p, mode)
        except OSError:
            if not exist_ok or not self.isdir(p):
                raise

    def rmdir(self, path: PathLike) -> None:
        """Remove the empty directory *path* (ENOTEMPTY otherwise)."""
        self._call("proxyfs_rmdir_path", self._abs(path), filename=path)

    def rmtree(self, path: PathLike, ignore_errors: bool = False,
               onerror: Optional[Callable[..., Any]] = None) -> None:
        """Remove the tree at *path*, as ``shutil.rmtree``: errors are
        ignored with *ignore_errors*, passed to ``onerror(func, path,
        exc_info)`` if given, else raised. *path* must not be a symlink
        (OSError). Each directory is listed once, with its entries'
        types."""
        if ignore_errors:
            def onerror(*args: Any) -> None:  # noqa: F811
                pass
        elif onerror is None:
            def onerror(*args: Any) -> None:  # noqa: F811
                raise  # re-raise the exception being handled

        try:
            st = self.lstat(path)
        except OSError:
            onerror(self.lstat, path, sys.exc_info())
            return
        try:
            if statmod.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP,
                              "Cannot call rmtree on a symbolic link", path)
        except OSError:
            onerror(self.islink, path, sys.exc_info())
            return
        self._rmtree(os.fspath(path), onerror)

    def _rmtree(self, path: Any, onerror: Callable[..., Any]) -> None:
        try:
            entries = self.listdir_with_stat(path)
        except OSError:
            onerror(self.listdir, path, sys.exc_info())
            entries = []
        for name, st in entries:
            full = posixpath.join(path, name)
            if statmod.S_ISDIR(st.st_mode):
                self._rmtree(full, onerror)
            else:
                try:
                    self.unlink(full)
                except OSError:
                    onerror(self.unlink, full, sys.exc_info())
        try:
            self.rmdir(path)
        except OSError:
            onerror(self.rmdir, path, sys.exc_info())

    # ------------------------------------------------------------ names

    def rename(self, src: PathLike, dst: PathLike) -> None:
        """rename(2): *dst* is replaced atomically if it exists (a file by
        a file, an empty directory by a directory)."""
        self._call("proxyfs_rename_path", self._abs(src), self._abs(dst),
                   filename=src, filename2=dst)

    replace = rename

    def unlink(self, path: PathLike) -> None:
        """Remove the name *path* (not a directory: EISDIR). An open
        :class:`File` of it stays usable."""
        self._call("proxyfs_unlink_path", self._abs(path), filename=path)

    remove = unlink

    def symlink(self, source: PathLike, link_name: PathLike) -> None:
        """Create symlink *link_name* whose target is the string *source*
        (stored as given, not checked)."""
        self._call("proxyfs_symlink_path", self._abs(link_name), _b(source),
                   filename=source, filename2=link_name)

    def readlink(self, path: PathLike) -> Union[str, bytes]:
        """The target of symlink *path* (EINVAL if it is not one)."""
        out = c_void_p()
        self._call("proxyfs_read_symlink_path", self._abs(path), byref(out),
                   filename=path)
        b = _lib.take_string(out)
        return b if isinstance(os.fspath(path), bytes) else os.fsdecode(b)

    def link(self, source: PathLike, link_name: PathLike) -> None:
        """Create hard link *link_name* to the existing file *source*
        (EPERM for a directory)."""
        self._call("proxyfs_link_path", self._abs(source),
                   self._abs(link_name), filename=source,
                   filename2=link_name)

    def mknod(self, path: PathLike, mode: int = 0o600, dev: int = 0) -> None:
        """mknod(2) for regular files only (the file type in *mode* 0 or
        ``S_IFREG``): creates an empty file. The server stores only
        regular files, directories and symlinks: other types raise
        ``OSError(ENOTSUP)``."""
        ftype = statmod.S_IFMT(mode)
        if ftype not in (0, statmod.S_IFREG):
            raise OSError(errno.ENOTSUP,
                          "proxyfs stores no device, FIFO or socket nodes",
                          path)
        self._call("proxyfs_create_path", self._abs(path),
                   mode & ~self.umask & 0o7777, byref(c_uint64()),
                   filename=path)

    # ------------------------------------------------------------ attributes

    def chmod(self, path: PathLike, mode: int,
              follow_symlinks: bool = True) -> None:
        """Set the permission bits (07777) of *path*."""
        b = self._abs(path)
        with self._acquire() as m:
            if follow_symlinks:
                rc = m.lib.proxyfs_chmod(m.handle,
                                         self._target_ino(m, b, path),
                                         mode & 0o7777)
            else:
                rc = m.lib.proxyfs_chmod_path(m.handle, b, mode & 0o7777)
        _lib.check(rc, path)

    def chown(self, path: PathLike, uid: int, gid: int,
              follow_symlinks: bool = True) -> None:
        """Set the owner and group of *path*; -1 leaves one unchanged."""
        b = self._abs(path)
        u, g = uid & 0xFFFFFFFF, gid & 0xFFFFFFFF
        with self._acquire() as m:
            if follow_symlinks:
                rc = m.lib.proxyfs_chown(m.handle,
                                         self._target_ino(m, b, path), u, g)
            else:
                rc = m.lib.proxyfs_chown_path(m.handle, b, u, g)
        _lib.check(rc, path)

    def lchown(self, path: PathLike, uid: int, gid: int) -> None:
        """:meth:`chown` of a symlink itself."""
        self.chown(path, uid, gid, follow_symlinks=False)

    def utime(self, path: PathLike,
              times: Optional[tuple[float, float]] = None, *,
              ns: Optional[tuple[int, int]] = None,
              follow_symlinks: bool = True) -> None:
        """Set the access and modification times of *path*: *times*
        ``(atime, mtime)`` in seconds or *ns* in nanoseconds; neither sets
        both to the server's clock (like ``touch``, which needs only write
        permission)."""
        attr = _lib.SetAttr()
        if times is not None and ns is not None:
            raise ValueError("utime: you may specify either 'times' or "
                             "'ns' but not both")
        if times is not None:
            if not isinstance(times, tuple) or len(times) != 2:
                raise TypeError("utime: 'times' must be a tuple of two "
                                "numbers")
            ns = (int(times[0] * 1e9), int(times[1] * 1e9))
        if ns is None:
            mask = _lib.SETATTR_ATIME_NOW | _lib.SETATTR_MTIME_NOW
        else:
            mask = _lib.SETATTR_ATIME | _lib.SETATTR_MTIME
            for ts, v in ((attr.atim, ns[0]), (attr.mtim, ns[1])):
                s, n = divmod(int(v), 1_000_000_000)
                ts.sec = s & 0xFFFFFFFFFFFFFFFF
                ts.nsec = n
        b = self._abs(path)
        with self._acquire() as m:
            if follow_symlinks:
                rc = m.lib.proxyfs_setattr(m.handle,
                                           self._target_ino(m, b, path),
                                           mask, byref(attr), None)
            else:
                rc = m.lib.proxyfs_setattr_path(m.handle, b, mask,
                                                byref(attr), None)
        _lib.check(rc, path)

    def copymode(self, src: PathLike, dst: PathLike) -> None:
        """Copy the permission bits of *src* to *dst*."""
        self.chmod(dst, statmod.S_IMODE(self.stat(src).st_mode))

    def copystat(self, src: PathLike, dst: PathLike) -> None:
        """Copy the permission bits, access and modification times and the
        extended attributes of *src* to *dst* (as ``shutil.copystat`` on
        Linux; an attribute the server refuses with EPERM, EACCES or
        ENOTSUP is skipped)."""
        st = self.stat(src)
        self.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        for key in self.listxattr(src):
            try:
                self.setxattr(dst, key, self.getxattr(src, key))
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EACCES, errno.ENOTSUP,
                                   errno.ENODATA):
                    raise
        self.chmod(dst, statmod.S_IMODE(st.st_mode))

    def access(self, path: PathLike, mode: int) -> bool:
        """True if the volume's identity may access *path* as *mode* asks
        (``os.F_OK`` or an OR of ``os.R_OK``, ``os.W_OK``, ``os.X_OK``).

        The server has no access call: this stats *path* (following
        symlinks; False if that fails, e.g. ENOENT or no search permission
        on a parent) and applies the server's rules to the mode bits with
        the mount's uid, gid and groups: the owner's, group's or others'
        bits, root may read and write anything and execute what has an
        execute bit. W_OK on a read-only mount is False. A volume that
        squashes root judges root as its anonymous user: this does not
        know that.
        """
        try:
            st = self.stat(path)
        except (OSError, ValueError):
            return False
        want = mode & 7
        if want == 0:
            return True
        if want & os.W_OK and self.read_only:
            return False
        fmode = st.st_mode
        with self._lock:
            uid, gid = self._uid, self._gid
        if uid == 0:
            if not want & os.X_OK or statmod.S_ISDIR(fmode) or fmode & 0o111:
                return True
            return False
        if uid == st.st_uid:
            bits = fmode >> 6
        elif gid == st.st_gid or st.st_gid in self._creds.groups:
            bits = fmode >> 3
        else:
            bits = fmode
        return want & ~bits & 7 == 0

    def statvfs(self, path: PathLike = "/") -> os.statvfs_result:
        """The volume's statistics, as ``os.statvfs`` (*path* must exist;
        the figures are the volume's, whatever path is given)."""
        self.stat(path)
        out = c_void_p()
        self._call("proxyfs_statvfs", byref(out), filename=path)
        try:
            t = _lib.STATVFS_STRUCT.unpack(
                ctypes.string_at(out.value, _lib.STATVFS_STRUCT.size))
        finally:
            _lib.free(out.value)
        (bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid,
         flag, namemax) = t
        return os.statvfs_result(
            (bsize, frsize, blocks, bfree, bavail, files, ffree, favail,
             flag, namemax), {"f_fsid": fsid})

    # ------------------------------------------------------------ xattrs

    def _xattr_get(self, m: Mount, ino: int, b: Optional[bytes],
                   key: Union[str, bytes], size: int, fname: Any) -> bytes:
        k = _b(key)
        while True:
            n = size
            if n == 0:
                out = c_size_t()
                rc = (m.lib.proxyfs_get_xattr(m.handle, ino, k, None, 0,
                                              byref(out)) if b is None else
                      m.lib.proxyfs_get_xattr_path(m.handle, b, k, None, 0,
                                                   byref(out)))
                _lib.check(rc, fname)
                n = out.value
                if n == 0:
                    return b""
            buf = ctypes.create_string_buffer(n)
            out = c_size_t()
            rc = (m.lib.proxyfs_get_xattr(m.handle, ino, k, buf, n,
                                          byref(out)) if b is None else
                  m.lib.proxyfs_get_xattr_path(m.handle, b, k, buf, n,
                                               byref(out)))
            if rc == errno.ERANGE and size == 0:
                continue  # it grew between the two calls
            _lib.check(rc, fname)
            return buf.raw[:out.value]

    def _xattr_list(self, m: Mount, ino: int, b: Optional[bytes], size: int,
                    fname: Any) -> list[str]:
        while True:
            n = size
            if n == 0:
                out = c_size_t()
                rc = (m.lib.proxyfs_list_xattr(m.handle, ino, None, 0,
                                               byref(out)) if b is None else
                      m.lib.proxyfs_list_xattr_path(m.handle, b, None, 0,
                                                    byref(out)))
                _lib.check(rc, fname)
                n = out.value
                if n == 0:
                    return []
            buf = ctypes.create_string_buffer(n)
            out = c_size_t()
            rc = (m.lib.proxyfs_list_xattr(m.handle, ino, buf, n,
                                           byref(out)) if b is None else
                  m.lib.proxyfs_list_xattr_path(m.handle, b, buf, n,
                                                byref(out)))
            if rc == errno.ERANGE and size == 0:
                continue
            _lib.check(rc, fname)
            raw = buf.raw[:out.value]
            return [os.fsdecode(x) for x in raw.split(b"\0") if x]

    def _xattr_set(self, m: Mount, ino: int, b: Optional[bytes],
                   key: Union[str, bytes], value: Union[bytes, str],
                   flags: int, fname: Any) -> None:
        k = _b(key)
        v = value.encode() if isinstance(value, str) else bytes(value)
        rc = (m.lib.proxyfs_set_xattr(m.handle, ino, k, v, len(v), flags)
              if b is None else
              m.lib.proxyfs_set_xattr_path(m.handle, b, k, v, len(v), flags))
        _lib.check(rc, fname)

    def _xattr_remove(self, m: Mount, ino: int, b: Optional[bytes],
                      key: Union[str, bytes], fname: Any) -> None:
        k = _b(key)
        rc = (m.lib.proxyfs_remove_xattr(m.handle, ino, k) if b is None else
              m.lib.proxyfs_remove_xattr_path(m.handle, b, k))
        _lib.check(rc, fname)

    def _xattr_target(self, m: Mount, path: PathLike,
                      follow: bool) -> tuple[int, Optional[bytes]]:
        b = self._abs(path)
        if follow:
            return self._target_ino(m, b, path), None
        return 0, b

    def getxattr(self, path: PathLike, key: Union[str, bytes],
                 size: int = 0, follow_symlinks: bool = True) -> bytes:
        """The value of extended attribute *key* of *path* (ENODATA if it
        has none). With *size* 0 the size is asked first; otherwise it is
        the buffer size to use (ERANGE if too small)."""
        with self._acquire() as m:
            ino, b = self._xattr_target(m, path, follow_symlinks)
            return self._xattr_get(m, ino, b, key, size, path)

    def listxattr(self, path: PathLike, size: int = 0,
                  follow_symlinks: bool = True) -> list[str]:
        """The names of *path*'s extended attributes; *size* as for
        :meth:`getxattr`."""
        with self._acquire() as m:
            ino, b = self._xattr_target(m, path, follow_symlinks)
            return self._xattr_list(m, ino, b, size, path)

    def setxattr(self, path: PathLike, key: Union[str, bytes],
                 value: Union[bytes, str], flags: int = 0,
                 follow_symlinks: bool = True) -> None:
        """Set extended attribute *key* of *path* to *value* (bytes, or str
        stored as UTF-8; up to 64 KiB). *flags*: 0 creates or replaces,
        ``XATTR_CREATE`` fails with EEXIST if it exists, ``XATTR_REPLACE``
        with ENODATA if it does not."""
        with self._acquire() as m:
            ino, b = self._xattr_target(m, path, follow_symlinks)
            self._xattr_set(m, ino, b, key, value, flags, path)

    def removexattr(self, path: PathLike, key: Union[str, bytes],
                    follow_symlinks: bool = True) -> None:
        """Remove extended attribute *key* of *path* (ENODATA if none)."""
        with self._acquire() as m:
            ino, b = self._xattr_target(m, path, follow_symlinks)
            self._xattr_remove(m, ino, b, key, path)

    # ------------------------------------------------------------ files

    def _open_ino(self, m: Mount, ino: int, flags: int, path: Any,
                  mode: str) -> File:
        """Open inode *ino* on mount *m* and wrap it (the File takes its
        own reference to *m*)."""
        fh = c_uint64()
        _lib.check(m.lib.proxyfs_open(m.handle, ino, flags & os.O_ACCMODE,
                                      byref(fh)), path)
        if not m.acquire():
            m.lib.proxyfs_close(m.handle, fh.value)
            raise OSError(errno.ENOTCONN, "volume not mounted", path)
        f = File(self, m, ino, fh.value, path, mode, flags)
        with self._lock:
            self._files.add(f)
        return f

    def open(self, path: PathLike, flags: int = os.O_RDONLY,
             mode: int = 0o666) -> File:
        """Open *path* as ``os.open`` does and return a :class:`File`
        (unbuffered, binary).

        *flags*: ``os.O_RDONLY``, ``os.O_WRONLY`` or ``os.O_RDWR``, with
        ``os.O_CREAT`` (create with *mode* less the umask), ``os.O_EXCL``,
        ``os.O_TRUNC`` and ``os.O_APPEND``; other flags are ignored. A
        final symlink is followed (a dangling one is ENOENT, even with
        O_CREAT). Opening a directory raises IsADirectoryError.

        A file created with a *mode* that denies its owner the access
        asked for (``0o444`` for writing) is created with the owner's
        bits added and gets *mode* when the File closes: the server checks
        permissions at every read and write, so this is how the creator
        keeps the access that open(2) gives it.
        """
        acc = flags & os.O_ACCMODE
        if acc not in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR):
            raise ValueError(f"bad access mode in flags {flags:#o}")
        fmode = _flags_to_mode(flags)
        b = self._abs(path)
        cmode = mode & ~self.umask & 0o7777
        with self._acquire() as m:
            ino = 0
            created = False
            for _ in range(3):
                if flags & os.O_CREAT and (flags & os.O_EXCL or ino == -1):
                    # The creator gets the access it asked for even when
                    # cmode denies it (as open(2) with O_CREAT): create
                    # open to the owner, chmod at close.
                    need = {os.O_RDONLY: 0o400, os.O_WRONLY: 0o200,
                            os.O_RDWR: 0o600}[acc]
                    out = c_uint64()
                    rc = m.lib.proxyfs_create_path(m.handle, b, cmode | need,
                                                   byref(out))
                    if rc == errno.EEXIST and not flags & os.O_EXCL:
                        ino = 0
                        continue  # made by another client meanwhile
                    _lib.check(rc, path)
                    ino, created = out.value, True
                    break
                try:
                    st = self._stat_follow(m, b, path)
                except FileNotFoundError:
                    if not flags & os.O_CREAT:
                        raise
                    ino = -1
                    continue
                if statmod.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR,
                                            os.strerror(errno.EISDIR), path)
                ino = st.st_ino
                break
            else:
                raise OSError(errno.EAGAIN, "file kept appearing and "
                              "disappearing", path)
            f = self._open_ino(m, ino, flags, path, fmode)
        try:
            if created and cmode != cmode | need:
                # The server checks permissions at every read and write,
                # not at open: the final mode is set when the file closes.
                f._final_mode = cmode
            if flags & os.O_TRUNC and not created and acc != os.O_RDONLY:
                f.ftruncate(0)
        except BaseException:
            f.close()
            raise
        return f

    def fopen(self, path: PathLike, mode: str = "r", buffering: int = -1,
              encoding: Optional[str] = None, errors: Optional[str] = None,
              newline: Optional[str] = None) -> IO[Any]:
        """Open *path* as the built-in ``open`` does.

        *mode*: one of ``r`` (read), ``w`` (create or truncate), ``a``
        (create, write at the end), ``x`` (create, EEXIST if it exists),
        with ``+`` to read and write, and ``b`` for binary or ``t`` (the
        default) for text. New files get mode 0666 less the umask.

        Binary mode returns the :class:`File` itself (unbuffered: each
        read and write is a request, and it has every ``f*`` method of the
        reference API) unless *buffering* > 1, which wraps it in
        ``io.BufferedReader``/``BufferedWriter``/``BufferedRandom`` of that
        size. Text mode returns an ``io.TextIOWrapper`` (with *encoding*,
        *errors*, *newline*) over a buffered File (*buffering* bytes,
        default 1 MiB); its ``.buffer.raw`` is the File.
        Raises ``ValueError`` for a bad mode.
        """
        if not isinstance(mode, str):
            raise TypeError(f"mode must be str, not {type(mode).__name__}")
        modes = set(mode)
        if (modes - set("rwxab+t") or len(mode) > len(modes)
                or sum(c in modes for c in "rwxa") != 1
                or ("b" in modes and "t" in modes)):
            raise ValueError(f"invalid mode: {mode!r}")
        binary = "b" in modes
        if binary and (encoding or errors or newline):
            raise ValueError("binary mode doesn't take an encoding, errors "
                             "or newline argument")
        if not binary and buffering == 0:
            raise ValueError("can't have unbuffered text I/O")
        plus = "+" in modes
        if "r" in modes:
            flags = os.O_RDWR if plus else os.O_RDONLY
        else:
            flags = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT
            flags |= {"w": os.O_TRUNC, "a": os.O_APPEND,
                      "x": os.O_EXCL}[next(c for c in "wax" if c in modes)]
        raw = self.open(path, flags)
        raw._mode = mode
        try:
            if binary and buffering in (-1, 0, 1):
                return raw
            size = DEFAULT_BUFFER_SIZE if buffering in (-1, 1) else buffering
            if plus:
                buf: Any = io.BufferedRandom(raw, size)
            elif "r" in modes:
                buf = io.BufferedReader(raw, size)
            else:
                buf = io.BufferedWriter(raw, size)
            if binary:
                return buf
            text = io.TextIOWrapper(buf, encoding, errors, newline,
                                    line_buffering=buffering == 1)
            text.mode = mode  # type: ignore[misc]
            if "a" in modes:
                text.seek(0, os.SEEK_END)
            return text
        except BaseException:
            raw.close()
            raise

    # ------------------------------------------------------------ copying

    @staticmethod
    def copyfileobj(fsrc: Any, fdst: Any, length: int = 1 << 20) -> None:
        """Copy the file object *fsrc* to *fdst* in chunks of *length*
        bytes, from their current positions (``shutil.copyfileobj``)."""
        shutil.copyfileobj(fsrc, fdst, length)

    def copyfile(self, src: PathLike, dst: PathLike) -> PathLike:
        """Copy the data of file *src* to file *dst* (created or
        truncated), without metadata. The copy is made by the server
        (``proxyfs_copy_range``, 64 MiB per request): the data does not
        cross the network. Raises ``SameFileError`` if they are the same
        file, IsADirectoryError if either is a directory. Returns *dst*."""
        try:
            if self.samefile(src, dst):
                raise SameFileError(f"{src!r} and {dst!r} are the same file")
        except FileNotFoundError:
            pass
        with self.open(src, os.O_RDONLY) as fs, \
                self.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as fd:
            off = 0
            with self._acquire() as m:
                while True:
                    out = c_uint64()
                    rc = m.lib.proxyfs_copy_range(m.handle, fs.ino, off,
                                                  fd.ino, off,
                                                  _lib.COPY_RANGE_MAX,
                                                  byref(out))
                    _lib.check(rc, src, dst)
                    if out.value == 0:
                        break
                    off += out.value
        return dst

    def _into_dir(self, src: PathLike, dst: PathLike) -> Any:
        if self.isdir(dst):
            name = posixpath.basename(os.fspath(src).rstrip(
                b"/" if isinstance(os.fspath(src), bytes) else "/"))
            return posixpath.join(os.fspath(dst), name)
        return dst

    def copy(self, src: PathLike, dst: PathLike) -> PathLike:
        """Copy file *src* to *dst* (a file, or a directory to copy into)
        with its permission bits, as ``cp``. Returns the file written."""
        dst = self._into_dir(src, dst)
        self.copyfile(src, dst)
        self.copymode(src, dst)
        return dst

    def copy2(self, src: PathLike, dst: PathLike) -> PathLike:
        """:meth:`copy`, then :meth:`copystat` (times and extended
        attributes too), as ``cp -p``. Returns the file written."""
        dst = self._into_dir(src, dst)
        self.copyfile(src, dst)
        self.copystat(src, dst)
        return dst

    def copytree(self, src: PathLike, dst: PathLike, symlinks: bool = False,
                 ignore: Optional[Callable[[Any, list[Any]],
                                           Iterable[Any]]] = None,
                 copy_function: Optional[Callable[[Any, Any], Any]] = None,
                 dirs_exist_ok: bool = False) -> PathLike:
        """Copy the tree at *src* to *dst*, as ``shutil.copytree``: files
        with *copy_function* (default :meth:`copy2`), symlinks as symlinks
        if *symlinks* else their targets' contents, *ignore(src, names)*
        returns names to skip, *dst* must not exist unless
        *dirs_exist_ok*. Errors are gathered and raised at the end as
        ``shutil.Error``. Returns *dst*."""
        copy_fn = copy_function or self.copy2
        entries = self.listdir_with_stat(src)
        names = [n for n, _ in entries]
        ignored = set(ignore(src, names)) if ignore is not None else set()
        if dirs_exist_ok:
            self.makedirs(dst, exist_ok=True)
        else:
            self.mkdir(dst)
        errs: list[Any] = []
        for name, st in entries:
            if name in ignored:
                continue
            s = posixpath.join(os.fspath(src), name)
            d = posixpath.join(os.fspath(dst), name)
            try:
                if statmod.S_ISLNK(st.st_mode):
                    if symlinks:
                        self.symlink(self.readlink(s), d)
                    elif self.isdir(s):
                        self.copytree(s, d, symlinks, ignore, copy_function,
                                      dirs_exist_ok)
                    else:
                        copy_fn(s, d)
                elif statmod.S_ISDIR(st.st_mode):
                    self.copytree(s, d, symlinks, ignore, copy_function,
                                  dirs_exist_ok)
                else:
                    copy_fn(s, d)
            except Error as e:
                errs.extend(e.args[0])
            except OSError as e:
                errs.append((s, d, str(e)))
        try:
            self.copystat(src, dst)
        except OSError as e:
            errs.append((src, dst, str(e)))
        if errs:
            raise Error(errs)
        return dst

    def move(self, src: PathLike, dst: PathLike) -> PathLike:
        """Move *src* to *dst* (into it if it is a directory) with one
        rename: the volume is one filesystem, nothing is copied. Returns
        the destination."""
        real = dst
        if self.isdir(dst):
            real = self._into_dir(src, dst)
            if self.exists(real):
                raise Error(f"Destination path '{real}' already exists")
        self.rename(src, real)
        return real


def _flags_to_mode(flags: int) -> str:
    acc = flags & os.O_ACCMODE
    if flags & os.O_APPEND:
        m = "a"
    elif flags & os.O_EXCL and flags & os.O_CREAT:
        m = "x"
    elif acc != os.O_RDONLY and flags & (os.O_TRUNC | os.O_CREAT):
        m = "w"
    else:
        m = "r"
    if acc == os.O_RDWR:
        m += "+"
    return m + "b"
