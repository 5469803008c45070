"""File and fopen: modes, the io protocol, the f* calls, io wrappers,
tarfile, unlinked open files."""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tarfile

import pytest

import proxyfs
from conftest import OTHER_UID, USER_GID, USER_UID


def write(vol, path, data: bytes) -> None:
    with vol.fopen(path, "wb") as f:
        f.write(data)


def read(vol, path) -> bytes:
    with vol.fopen(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- modes

def test_binary_modes(vol):
    with vol.fopen("f", "wb") as f:
        assert isinstance(f, proxyfs.File) and isinstance(f, io.RawIOBase)
        assert f.mode == "wb" and f.name == "f"
        assert f.writable() and not f.readable() and f.seekable()
        assert f.write(b"hello ") == 6
        assert f.write(memoryview(b"xxworld")[2:]) == 5
        with pytest.raises(io.UnsupportedOperation):
            f.read()
    assert read(vol, "f") == b"hello world"
    with vol.fopen("f", "ab") as f:
        assert f.write(b"!") == 1
        f.seek(0)
        f.write(b"?")  # append mode writes at the end wherever it is
    assert read(vol, "f") == b"hello world!?"
    with vol.fopen("f", "r+b") as f:
        assert f.read(5) == b"hello"
        f.write(b"_")
        f.seek(0)
        assert f.read() == b"hello_world!?"
    with vol.fopen("f", "rb") as f:
        assert f.readable() and not f.writable()
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
        with pytest.raises(io.UnsupportedOperation):
            f.truncate(0)
    with vol.fopen("f", "w+b") as f:  # truncates
        assert f.read() == b""
        f.write(b"abc")
        f.seek(1)
        assert f.read() == b"bc"
    with vol.fopen("f", "a+b") as f:
        assert f.read() == b"abc"
        f.write(b"d")
        f.seek(0)
        assert f.read() == b"abcd"
    with vol.fopen("new", "xb") as f:
        f.write(b"x")
    with pytest.raises(FileExistsError) as ei:
        vol.fopen("new", "xb")
    assert ei.value.filename == "new"
    with vol.fopen("new2", "x+b") as f:
        f.write(b"y")
        f.seek(0)
        assert f.read() == b"y"
    assert stat.S_IMODE(vol.stat("new2").st_mode) == 0o644


def test_text_modes(vol):
    with vol.fopen("t", "w") as f:
        assert isinstance(f, io.TextIOWrapper) and f.mode == "w"
        assert isinstance(f.buffer.raw, proxyfs.File)
        f.write("line one\nligne deux é\n")
        f.writelines(["3\n", "4\n"])
    with vol.fopen("t") as f:
        assert f.readline() == "line one\n"
        assert f.readlines() == ["ligne deux é\n", "3\n", "4\n"]
    with vol.fopen("t", "a", encoding="latin-1") as f:
        f.write("ü\n")
    assert read(vol, "t").endswith(b"\xfc\n")
    with vol.fopen("t", "r", encoding="utf-8", errors="replace") as f:
        assert f.read().endswith("\ufffd\n")
    with vol.fopen("t", "w+", newline="\r\n") as f:
        f.write("a\nb\n")
        f.seek(0)
        assert f.read() == "a\r\nb\r\n"  # untranslated on input
    assert read(vol, "t") == b"a\r\nb\r\n"
    with vol.fopen("t", "r+t") as f:
        assert f.read(1) == "a"
    with vol.fopen("x.txt", "x") as f:
        f.write("x")
    with vol.fopen("t", "rb", buffering=4096) as f:
        assert isinstance(f, io.BufferedReader) and f.read() == b"a\r\nb\r\n"
    with vol.fopen("t", "wb", buffering=4096) as f:
        assert isinstance(f, io.BufferedWriter)
        f.write(b"z" * 10000)
    with vol.fopen("t", "r+b", buffering=4096) as f:
        assert isinstance(f, io.BufferedRandom) and len(f.read()) == 10000


def test_bad_modes_and_open_errors(vol):
    for bad in ("", "rw", "rr", "q", "rbt", "b", "+", "r++"):
        with pytest.raises(ValueError):
            vol.fopen("f", bad)
    with pytest.raises(TypeError):
        vol.fopen("f", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        vol.fopen("f", "wb", encoding="utf-8")
    with pytest.raises(ValueError):
        vol.fopen("f", "w", buffering=0)
    with pytest.raises(FileNotFoundError) as ei:
        vol.fopen("nope")
    assert ei.value.errno == errno.ENOENT and ei.value.filename == "nope"
    with pytest.raises(FileNotFoundError):
        vol.fopen("nodir/f", "w")
    vol.mkdir("d")
    for m in ("r", "rb", "w", "a+b"):
        with pytest.raises(IsADirectoryError) as ei:
            vol.fopen("d", m)
        assert ei.value.filename == "d"
    vol.symlink("nowhere", "dangling")
    with pytest.raises(FileNotFoundError):
        vol.fopen("dangling")
    with pytest.raises(ValueError):
        vol.open("f", os.O_WRONLY | os.O_RDWR)


def test_os_open_flags_and_create_mode(vol):
    f = vol.open("o", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    assert f.mode == "x+b"
    f.write(b"12345")
    f.close()
    assert stat.S_IMODE(vol.stat("o").st_mode) == 0o600
    with vol.open("o", os.O_WRONLY | os.O_TRUNC) as f:
        assert f.mode == "wb"
    assert vol.getsize("o") == 0
    with vol.open("o", os.O_RDONLY | os.O_TRUNC) as f:  # O_TRUNC needs write
        assert f.mode == "rb"
    # The creator may write a file it creates read-only (as open(2)).
    with vol.open("ro", os.O_WRONLY | os.O_CREAT, 0o444) as f:
        f.write(b"ok")
    assert stat.S_IMODE(vol.stat("ro").st_mode) == 0o444
    with pytest.raises(PermissionError):
        vol.fopen("ro", "wb")
    assert read(vol, "ro") == b"ok"
    vol.umask = 0o077
    with vol.fopen("um", "w"):
        pass
    assert stat.S_IMODE(vol.stat("um").st_mode) == 0o600


# ---------------------------------------------------------------- io protocol

def test_read_readinto_seek_tell_truncate(vol):
    data = bytes(range(256)) * 100
    write(vol, "f", data)
    with vol.fopen("f", "r+b") as f:
        assert f.read(0) == b""
        assert f.read(10) == data[:10] and f.tell() == 10
        buf = bytearray(20)
        assert f.readinto(buf) == 20 and bytes(buf) == data[10:30]
        mv = memoryview(bytearray(8))
        assert f.readinto(mv[2:]) == 6
        assert f.readinto(bytearray()) == 0
        assert f.seek(-6, os.SEEK_END) == len(data) - 6
        assert f.read() == data[-6:]
        assert f.read(5) == b""
        assert f.readinto(bytearray(5)) == 0
        assert f.seek(10) == 10 and f.seek(5, os.SEEK_CUR) == 15
        assert f.lseek(0, os.SEEK_SET) == 0
        assert f.read(None) == data
        with pytest.raises(OSError) as ei:
            f.seek(-1)
        assert ei.value.errno == errno.EINVAL
        with pytest.raises(ValueError):
            f.seek(0, 99)
        f.seek(100)
        assert f.truncate() == 100 and f.tell() == 100
        assert f.fgetsize() == 100
        assert f.truncate(50) == 50 and f.tell() == 100
        f.write(b"Z")  # past the end: a hole of zeros
        assert f.fstat().st_size == 101
        assert f.pread(60, 45) == data[45:50] + bytes(50) + b"Z"
        assert f.pwrite(b"PP", 0) == 2 and f.tell() == 101
        assert f.pread(3, 0) == b"PP" + data[2:3]
        assert f.pread(0, 0) == b"" and f.pread(10, 1000) == b""
        assert f.pwrite(b"", 0) == 0
        assert f.isatty() is False
        f.flush()
    with pytest.raises(ValueError):
        f.read()
    with pytest.raises(ValueError):
        f.tell()
    with pytest.raises(ValueError):
        f.fstat()
    f.close()  # twice: nothing


def test_fileno_and_handles(vol):
    with vol.fopen("f", "wb") as f:
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()
        assert f.fh != 0 and f.ino == vol.stat("f").st_ino
        assert "proxyfs.File" in repr(f)
    assert "closed" in repr(f)


def test_readlines_iteration_and_buffered_reader(vol):
    lines = [f"line {i}\n".encode() for i in range(5000)]
    write(vol, "f", b"".join(lines))
    with vol.fopen("f", "rb") as f:
        assert list(f) == lines  # IOBase iteration via readline
    with vol.fopen("f", "rb") as raw:
        br = io.BufferedReader(raw, 65536)
        assert br.readline() == lines[0]
        assert br.peek(1)[:1] == b"l"
        assert br.read(7) == b"line 1\n"
        assert br.read() == b"".join(lines[2:])
    with vol.fopen("f", "rb") as raw:
        tw = io.TextIOWrapper(io.BufferedReader(raw), encoding="ascii")
        assert sum(1 for _ in tw) == 5000


def test_shutil_copyfileobj_to_and_from_local(vol, tmp_path):
    data = os.urandom(2_500_000)
    local = tmp_path / "local"
    local.write_bytes(data)
    with open(local, "rb") as s, vol.fopen("up", "wb") as d:
        shutil.copyfileobj(s, d)
    with vol.fopen("up", "rb") as s, open(tmp_path / "down", "wb") as d:
        shutil.copyfileobj(s, d)
    assert (tmp_path / "down").read_bytes() == data


def test_tarfile_round_trip(vol, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(200_000),
             "sub/empty": b""}
    for name, data in files.items():
        (src / name).write_bytes(data)
    # Write an archive onto the volume (gzip, through a buffered File).
    with vol.fopen("x.tar.gz", "wb", buffering=1 << 16) as f:
        with tarfile.open(fileobj=f, mode="w:gz") as tar:
            tar.add(src, arcname="src")
            info = tarfile.TarInfo("inline.txt")
            payload = b"from memory"
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    # Read it back from the unbuffered File (random access).
    with vol.fopen("x.tar.gz", "rb") as f:
        with tarfile.open(fileobj=f, mode="r:gz") as tar:
            names = set(tar.getnames())
            assert {"src/a.txt", "src/sub/b.bin", "src/sub/empty",
                    "inline.txt"} <= names
            for name, data in files.items():
                assert tar.extractfile("src/" + name).read() == data
            assert tar.extractfile("inline.txt").read() == b"from memory"
    # An uncompressed archive made on the volume, extracted locally, and
    # its files written back to the volume from the archive.
    with vol.fopen("plain.tar", "w+b") as f:
        with tarfile.open(fileobj=f, mode="w") as tar:
            tar.add(src / "sub" / "b.bin", arcname="b.bin")
        f.seek(0)
        with tarfile.open(fileobj=f, mode="r") as tar:
            m = tar.getmember("b.bin")
            with tar.extractfile(m) as s, vol.fopen("b.bin", "wb") as d:
                shutil.copyfileobj(s, d)
            tar.extractall(tmp_path / "out")
    assert read(vol, "b.bin") == files["sub/b.bin"]
    assert (tmp_path / "out" / "b.bin").read_bytes() == files["sub/b.bin"]


# ---------------------------------------------------------------- f* calls

def test_fstat_fsync_ftruncate_fchmod_fchown(vol, root, testdir):
    with vol.fopen("f", "w+b") as f:
        f.write(b"x" * 5000)
        st = f.fstat()
        assert stat.S_ISREG(st.st_mode) and st.st_size == 5000
        assert st.st_ino == f.ino and st.st_uid == USER_UID
        f.fsync()
        f.fdatasync()
        f.ftruncate(10)
        assert f.fgetsize() == 10
        f.ftruncate(20000)
        assert f.pread(20000, 0) == b"x" * 10 + bytes(19990)
        with pytest.raises(OSError) as ei:
            f.ftruncate(-1)
        assert ei.value.errno == errno.EINVAL
        f.fchmod(0o600)
        assert stat.S_IMODE(vol.stat("f").st_mode) == 0o600
        f.fchmod(0o100644)  # type bits ignored
        assert stat.S_IMODE(f.fstat().st_mode) == 0o644
        with pytest.raises(PermissionError) as ei:
            f.fchown(OTHER_UID, -1)
        assert ei.value.filename == "f"
        f.fchown(-1, -1)
    with root.fopen(testdir + "/f", "rb") as f:
        f.fchown(OTHER_UID, -1)
        assert f.fstat().st_uid == OTHER_UID and f.fstat().st_gid == USER_GID


def test_fallocate_discard_zerofill_seek_data_hole(vol):
    mib = 1 << 20
    with vol.fopen("s", "w+b") as f:
        f.fallocate(0, 0, 4 * mib)
        assert f.fgetsize() == 4 * mib
        f.fallocate(proxyfs.FALLOC_FL_KEEP_SIZE, 4 * mib, mib)
        assert f.fgetsize() == 4 * mib
        with pytest.raises(OSError) as ei:
            f.fallocate(proxyfs.FALLOC_FL_PUNCH_HOLE, 0, 10)
        assert ei.value.errno == errno.EOPNOTSUPP
        with pytest.raises(OSError) as ei:
            f.fallocate(0, 0, 0)
        assert ei.value.errno == errno.EINVAL
        f.pwrite(b"\xff" * (4 * mib), 0)
        before = f.fstat().st_blocks
        f.discard(mib, 2 * mib)
        assert f.fgetsize() == 4 * mib
        assert f.pread(2 * mib, mib) == bytes(2 * mib)
        assert f.pread(1, mib - 1) == b"\xff" and f.pread(1, 3 * mib) == b"\xff"
        assert f.fstat().st_blocks < before
        assert f.seek(mib, proxyfs.SEEK_HOLE) == mib
        assert f.seek(mib, proxyfs.SEEK_DATA) == 3 * mib
        assert f.seek(0, proxyfs.SEEK_DATA) == 0
        with pytest.raises(OSError) as ei:
            f.seek(10 * mib, proxyfs.SEEK_DATA)
        assert ei.value.errno == errno.ENXIO
        f.zerofill(10, 100)
        assert f.pread(120, 0) == b"\xff" * 10 + bytes(100) + b"\xff" * 10
        assert f.fgetsize() == 4 * mib
        f.zerofill(4 * mib - 10, 110)  # extends the file
        assert f.fgetsize() == 4 * mib + 100
        assert f.pread(200, 4 * mib - 20) == b"\xff" * 10 + bytes(110)
        f.zerofill(0, 0)


def test_fxattrs_and_dup(vol):
    with vol.fopen("f", "w+b") as f:
        assert f.flistxattr() == []
        f.fsetxattr("user.a", b"1")
        f.fsetxattr(b"user.b", "zwei")
        assert sorted(f.flistxattr()) == ["user.a", "user.b"]
        assert sorted(f.flistxattr(100)) == ["user.a", "user.b"]
        assert f.fgetxattr("user.b") == b"zwei"
        assert f.fgetxattr("user.b", 4) == b"zwei"
        with pytest.raises(OSError) as ei:
            f.fgetxattr("user.b", 2)
        assert ei.value.errno == errno.ERANGE
        with pytest.raises(FileExistsError):
            f.fsetxattr("user.a", b"x", proxyfs.XATTR_CREATE)
        f.fremovexattr("user.a")
        with pytest.raises(OSError) as ei:
            f.fremovexattr("user.a")
        assert ei.value.errno == errno.ENODATA and ei.value.filename == "f"
        assert vol.listxattr("f") == ["user.b"]
        f.write(b"0123456789")
        f.seek(4)
        g = f.dup()
        assert g.fh != f.fh and g.ino == f.ino and g.mode == f.mode
        assert g.tell() == 4 and g.read(2) == b"45"
        assert f.tell() == 4
        f.close()
        g.seek(0)
        assert g.read() == b"0123456789"  # its own handle stays open
        g.write(b"!")
        g.close()
    assert read(vol, "f") == b"0123456789!"


def test_unlinked_open_file_stays_usable(vol, other):
    write(vol, "doomed", b"still here")
    f = vol.fopen("doomed", "r+b")
    vol.unlink("doomed")
    assert not vol.exists("doomed")
    assert f.read() == b"still here"
    f.write(b", and more")
    f.seek(0)
    assert f.read() == b"still here, and more"
    assert f.fstat().st_nlink == 0
    f.fsetxattr("user.k", b"v")
    assert f.fgetxattr("user.k") == b"v"
    f.ftruncate(5)
    assert f.fgetsize() == 5
    # Replaced by a rename over its name: the same.
    write(vol, "a", b"old")
    write(vol, "b", b"new")
    g = vol.fopen("a", "rb")
    vol.rename("b", "a")
    assert g.read() == b"old" and read(vol, "a") == b"new"
    g.close()
    f.close()
    with pytest.raises(ValueError):
        f.read()
