"""File: an open file of a proxyfs volume, as an ``io.RawIOBase``."""

from __future__ import annotations

import ctypes
import errno
import io
import os
import threading
from ctypes import byref, c_size_t, c_uint64, c_void_p
from typing import TYPE_CHECKING, Any, Optional, Union

from . import _lib
from ._mount import Mount

if TYPE_CHECKING:
    from .volume import Volume

Buffer = Union[bytes, bytearray, memoryview]

#: fallocate modes accepted by :meth:`File.fallocate` (Linux's values).
FALLOC_FL_KEEP_SIZE = _lib.FALLOC_KEEP_SIZE
FALLOC_FL_PUNCH_HOLE = _lib.FALLOC_PUNCH_HOLE
FALLOC_FL_ZERO_RANGE = _lib.FALLOC_ZERO_RANGE
#: lseek whences beyond SEEK_SET/SEEK_CUR/SEEK_END (Linux's values).
SEEK_DATA = _lib.SEEK_DATA
SEEK_HOLE = _lib.SEEK_HOLE


class File(io.RawIOBase):
    """An open regular file of a mounted :class:`~proxyfs.Volume`.

    Made by :meth:`Volume.fopen <proxyfs.Volume.fopen>` (binary mode) or
    :meth:`Volume.open <proxyfs.Volume.open>`, never directly. It holds a
    server-side open handle (``proxyfs_open``): the file stays readable and
    writable through it after its last name is removed, and the C library
    opens it again if the daemon restarts. Data goes through the library's
    binary channel; every :meth:`write` reaches the server before it
    returns (there is no client cache: :meth:`flush` does nothing,
    :meth:`fsync` makes the data durable).

    As an ``io.RawIOBase`` it works with ``io.BufferedReader``,
    ``io.BufferedWriter``, ``io.TextIOWrapper``, ``shutil.copyfileobj`` and
    ``tarfile``. The server checks permissions at every read and write
    (not once at open): a mode changed after the open applies to the open
    File too. The methods of one File are serialized by a lock (it may
    be shared by threads; :meth:`pread` and :meth:`pwrite` leave the file
    position alone). There is no operating-system descriptor:
    :meth:`fileno` raises ``io.UnsupportedOperation``; :attr:`fh` is the
    server's handle number.
    """

    def __init__(self, volume: "Volume", mount: Mount, ino: int, fh: int,
                 path: Any, mode: str, flags: int) -> None:
        """Wrap an open handle; *mount* is a reference the File owns."""
        super().__init__()
        self._vol = volume
        self._m = mount
        self._h = mount.handle
        self._lib = mount.lib
        self._ino = ino
        self._fh = fh
        self.name = path
        self._mode = mode
        self._flags = flags
        acc = flags & os.O_ACCMODE
        self._readable = acc in (os.O_RDONLY, os.O_RDWR)
        self._writable = acc in (os.O_WRONLY, os.O_RDWR)
        self._append = bool(flags & os.O_APPEND)
        self._pos = 0
        self._lock = threading.RLock()
        # The mode to set at close (see Volume.open), or None.
        self._final_mode: Optional[int] = None

    # ------------------------------------------------------------ basics

    @property
    def mode(self) -> str:
        """The mode string given to ``fopen`` (or made from ``open``'s
        flags)."""
        return self._mode

    @property
    def ino(self) -> int:
        """The inode number of the file."""
        return self._ino

    @property
    def fh(self) -> int:
        """The server's open handle number (``proxyfs_open``)."""
        return self._fh

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"ino={self._ino}"
        return f"<proxyfs.File name={self.name!r} mode={self._mode!r} {state}>"

    def readable(self) -> bool:
        """True if the file was opened for reading."""
        self._check_open()
        return self._readable

    def writable(self) -> bool:
        """True if the file was opened for writing."""
        self._check_open()
        return self._writable

    def seekable(self) -> bool:
        """Always True."""
        self._check_open()
        return True

    def fileno(self) -> int:
        """Raises ``io.UnsupportedOperation``: a proxyfs file has no
        operating-system descriptor (see :attr:`fh`)."""
        raise io.UnsupportedOperation(
            "proxyfs.File has no OS file descriptor (see File.fh)")

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _err(self, rc: int) -> OSError:
        return _lib.error(rc, self.name)

    def close(self) -> None:
        """Close the server handle (``proxyfs_close``); closing twice does
        nothing. The last close of a file that has no name frees it.
        Raises ``OSError`` if the server refused the close (EBADF: the
        handle was lost after a daemon restart)."""
        with self._lock:
            if self.closed:
                return
            try:
                super().close()
            finally:
                err = None
                if self._final_mode is not None:
                    rc = self._lib.proxyfs_chmod(self._h, self._ino,
                                                 self._final_mode)
                    err = self._err(rc) if rc else None
                rc = self._lib.proxyfs_close(self._h, self._fh)
                err = err or (self._err(rc) if rc else None)
                self._vol._forget(self)
                self._m.release()
            if err is not None:
                raise err

    # ------------------------------------------------------------ data

    def _read_at(self, buf: Any, n: int, offset: int) -> int:
        got = c_size_t()
        rc = self._lib.proxyfs_read(self._h, self._ino, offset, n, buf, n,
                                    byref(got))
        if rc:
            raise self._err(rc)
        return got.value

    def _write_at(self, data: Buffer, offset: int) -> int:
        mv = memoryview(data).cast("B")
        n = mv.nbytes
        if n == 0:
            return 0
        if isinstance(data, bytes):
            buf: Any = data
        elif mv.readonly:
            buf = mv.tobytes()
        else:
            buf = (ctypes.c_char * n).from_buffer(mv)
        done = c_size_t()
        rc = self._lib.proxyfs_write(self._h, self._ino, offset, buf, n,
                                     byref(done))
        if rc:
            raise self._err(rc)
        return done.value

    def readinto(self, b: Any) -> int:
        """Read up to ``len(b)`` bytes at the file position into the
        writable buffer *b* (a ``bytearray``, ``memoryview``, array...);
        return the number read, 0 at the end of the file."""
        with self._lock:
            self._check_open()
            if not self._readable:
                raise io.UnsupportedOperation("File not open for reading")
            mv = memoryview(b).cast("B")
            n = mv.nbytes
            if n == 0:
                return 0
            got = self._read_at((ctypes.c_char * n).from_buffer(mv), n,
                                self._pos)
            self._pos += got
            return got

    def read(self, size: Optional[int] = -1) -> bytes:
        """Read up to *size* bytes (all to the end of the file if *size* is
        negative or None) from the file position."""
        if size is None or size < 0:
            return self.readall()
        buf = bytearray(size)
        n = self.readinto(buf)
        del buf[n:]
        return bytes(buf)

    def readall(self) -> bytes:
        """Read from the file position to the end of the file, in requests
        of the volume's maximum I/O size."""
        with self._lock:
            self._check_open()
            chunks = []
            step = self._m.max_io
            while True:
                buf = bytearray(step)
                n = self.readinto(buf)
                if n == 0:
                    break
                del buf[n:]
                chunks.append(buf)
            return b"".join(chunks)

    def write(self, data: Buffer) -> int:
        """Write *data* (bytes-like) at the file position (at the end of
        the file in append mode, which is read just before: appends of two
        clients at once can overlap); return the number of bytes written.
        """
        with self._lock:
            self._check_open()
            if not self._writable:
                raise io.UnsupportedOperation("File not open for writing")
            if self._append:
                self._pos = self._size()
            n = self._write_at(data, self._pos)
            self._pos += n
            return n

    def pread(self, size: int, offset: int) -> bytes:
        """Read up to *size* bytes at *offset* without using or moving the
        file position."""
        with self._lock:
            self._check_open()
            if not self._readable:
                raise io.UnsupportedOperation("File not open for reading")
            buf = bytearray(size)
            if size == 0:
                return b""
            n = self._read_at((ctypes.c_char * size).from_buffer(buf), size,
                              offset)
            del buf[n:]
            return bytes(buf)

    def pwrite(self, data: Buffer, offset: int) -> int:
        """Write *data* at *offset* without using or moving the file
        position (also in append mode); return the bytes written."""
        with self._lock:
            self._check_open()
            if not self._writable:
                raise io.UnsupportedOperation("File not open for writing")
            return self._write_at(data, offset)

    # ------------------------------------------------------------ position

    def _size(self) -> int:
        return self.fstat().st_size

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        """Move the file position and return it: *whence* ``SEEK_SET``,
        ``SEEK_CUR``, ``SEEK_END`` (reads the size from the server),
        ``SEEK_DATA`` or ``SEEK_HOLE`` (asked of the server: the next data
        or hole at or after *pos*; ``ENXIO`` past the end)."""
        with self._lock:
            self._check_open()
            if whence == os.SEEK_SET:
                new = pos
            elif whence == os.SEEK_CUR:
                new = self._pos + pos
            elif whence == os.SEEK_END:
                new = self._size() + pos
            elif whence in (SEEK_DATA, SEEK_HOLE):
                if pos < 0:
                    raise OSError(errno.ENXIO, os.strerror(errno.ENXIO),
                                  self.name)
                out = c_uint64()
                rc = self._lib.proxyfs_lseek(self._h, self._ino, pos, whence,
                                             byref(out))
                if rc:
                    raise self._err(rc)
                new = out.value
            else:
                raise ValueError(f"invalid whence ({whence})")
            if new < 0:
                raise OSError(errno.EINVAL, "negative seek position",
                              self.name)
            self._pos = new
            return new

    def lseek(self, pos: int, how: int) -> int:
        """The same as :meth:`seek` (the name of the reference API)."""
        return self.seek(pos, how)

    def tell(self) -> int:
        """The file position."""
        with self._lock:
            self._check_open()
            return self._pos

    def truncate(self, size: Optional[int] = None) -> int:
        """Set the file's size to *size* (default: the file position); the
        position does not move. Returns the new size."""
        with self._lock:
            self._check_open()
            if not self._writable:
                raise io.UnsupportedOperation("File not open for writing")
            if size is None:
                size = self._pos
            self.ftruncate(size)
            return size

    def flush(self) -> None:
        """Nothing to do: every write has reached the server when it
        returns (see :meth:`fsync` for durability)."""
        self._check_open()

    # ------------------------------------------------------------ metadata

    def fstat(self) -> os.stat_result:
        """The file's attributes (``proxyfs_get_stat`` by inode; works
        after the file lost its last name)."""
        with self._lock:
            self._check_open()
            p = c_void_p()
            rc = self._lib.proxyfs_get_stat(self._h, self._ino, byref(p))
            if rc:
                raise self._err(rc)
            return _lib.take_stat(p)

    def fgetsize(self) -> int:
        """The file's size in bytes, from :meth:`fstat`."""
        return self._size()

    def fsync(self) -> None:
        """Make the file's data and metadata durable on the server
        (``proxyfs_flush``)."""
        with self._lock:
            self._check_open()
            rc = self._lib.proxyfs_flush(self._h, self._ino)
            if rc:
                raise self._err(rc)

    def fdatasync(self) -> None:
        """As :meth:`fsync`: the server has a single flush for data and
        metadata."""
        self.fsync()

    def ftruncate(self, length: int) -> None:
        """Set the file's size to *length* (truncate, or extend with
        zeros); the position does not move."""
        with self._lock:
            self._check_open()
            if length < 0:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL),
                              self.name)
            rc = self._lib.proxyfs_resize(self._h, self._ino, length)
            if rc:
                raise self._err(rc)

    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2): *mode* 0 allocates ``[offset, offset+length)`` and
        extends the size; ``FALLOC_FL_KEEP_SIZE`` keeps the size;
        ``FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`` deallocates (reads as
        zeros); ``FALLOC_FL_ZERO_RANGE`` zeroes. Other modes raise
        ``OSError(EOPNOTSUPP)``."""
        with self._lock:
            self._check_open()
            rc = self._lib.proxyfs_fallocate(self._h, self._ino, mode, offset,
                                             length)
            if rc:
                raise self._err(rc)

    def discard(self, offset: int, length: int) -> None:
        """Give the storage of ``[offset, offset+length)`` back to the
        server: a hole is punched (``fallocate`` with
        ``PUNCH_HOLE | KEEP_SIZE``), the range reads as zeros and the size
        does not change."""
        self.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                       length)

    def zerofill(self, offset: int, length: int) -> None:
        """Make ``[offset, offset+length)`` read as zeros, extending the
        file if the range ends past it. Done by one ``fallocate`` with
        ``FALLOC_FL_ZERO_RANGE`` on the server (no data crosses the wire);
        if the server refuses that mode (``EOPNOTSUPP``), by writing zeros
        in chunks of the volume's maximum I/O size."""
        if length <= 0:
            return
        try:
            self.fallocate(FALLOC_FL_ZERO_RANGE, offset, length)
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP):
                raise
        step = min(length, self._m.max_io)
        zeros = bytes(step)
        done = 0
        while done < length:
            n = min(step, length - done)
            with self._lock:
                self._check_open()
                w = self._write_at(zeros[:n] if n < step else zeros,
                                   offset + done)
            done += w

    def fchmod(self, mode: int) -> None:
        """Set the permission bits (07777) of the file. The server checks
        permissions at every call: bits that deny this File's access make
        its later reads or writes fail with EACCES."""
        with self._lock:
            self._check_open()
            self._final_mode = None
            rc = self._lib.proxyfs_chmod(self._h, self._ino, mode & 0o7777)
            if rc:
                raise self._err(rc)

    def fchown(self, uid: int, gid: int) -> None:
        """Set the owner and group; -1 leaves one unchanged."""
        with self._lock:
            self._check_open()
            rc = self._lib.proxyfs_chown(self._h, self._ino, uid & 0xFFFFFFFF,
                                         gid & 0xFFFFFFFF)
            if rc:
                raise self._err(rc)

    def fgetxattr(self, key: Union[str, bytes], size: int = 0) -> bytes:
        """The value of extended attribute *key*. With *size* 0 the value's
        size is asked first; otherwise *size* is the buffer to use (ERANGE
        if too small)."""
        with self._lock:
            self._check_open()
            return self._vol._xattr_get(self._m, self._ino, None, key, size,
                                        self.name)

    def flistxattr(self, size: int = 0) -> list[str]:
        """The names of the file's extended attributes. *size* as for
        :meth:`fgetxattr`."""
        with self._lock:
            self._check_open()
            return self._vol._xattr_list(self._m, self._ino, None, size,
                                         self.name)

    def fsetxattr(self, key: Union[str, bytes], value: Union[bytes, str],
                  flags: int = 0) -> None:
        """Set extended attribute *key* to *value* (bytes, or str stored as
        UTF-8); *flags* 0, ``XATTR_CREATE`` or ``XATTR_REPLACE``."""
        with self._lock:
            self._check_open()
            self._vol._xattr_set(self._m, self._ino, None, key, value, flags,
                                 self.name)

    def fremovexattr(self, key: Union[str, bytes]) -> None:
        """Remove extended attribute *key* (ENODATA if it has none)."""
        with self._lock:
            self._check_open()
            self._vol._xattr_remove(self._m, self._ino, None, key, self.name)

    def dup(self) -> "File":
        """A new File on the same file with its own server handle (so it
        stays open when this one closes) and the same mode; it starts at
        this file's position and moves on its own afterwards (unlike
        dup(2), the two do not share a position)."""
        with self._lock:
            self._check_open()
            f = self._vol._open_ino(self._m, self._ino, self._flags,
                                    self.name, self._mode)
            f._pos = self._pos
            return f
