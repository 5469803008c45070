"""Volume: mounting, path calls, directories, attributes, xattrs, identity,
copies; error paths with their exception classes."""

from __future__ import annotations

import errno
import os
import pathlib
import stat
import time

import pytest

import proxyfs
from conftest import (OTHER_GID, OTHER_UID, REPO, USER_GID, USER_UID, VOLUME,
                      free_port)


def write(vol: proxyfs.Volume, path, data: bytes = b"data") -> None:
    with vol.fopen(path, "wb") as f:
        f.write(data)


def read(vol: proxyfs.Volume, path) -> bytes:
    with vol.fopen(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- package

def test_version_matches_project():
    with open(os.path.join(REPO, "VERSION")) as f:
        assert proxyfs.__version__ == f.read().strip()


def test_load_library_is_the_source_tree_one():
    name = proxyfs.load_library()
    assert name == os.environ["PROXYFS_LIBRARY"]
    assert name.endswith("libproxyfs.so.2")
    with pytest.raises(RuntimeError):
        proxyfs.load_library("/nonexistent/libproxyfs.so.2")


# ---------------------------------------------------------------- mounting

def test_mount_umount_and_context_manager(daemon):
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=0, gid=0)
    assert not v.mounted and "not mounted" in repr(v)
    with pytest.raises(OSError) as ei:
        v.stat("/")
    assert ei.value.errno == errno.ENOTCONN
    v.mount()
    v.mount()  # again: nothing
    assert v.mounted and v.isdir("/")
    v.umount()
    v.umount()  # again: nothing
    assert not v.mounted
    with pytest.raises(OSError) as ei:
        v.listdir("/")
    assert ei.value.errno == errno.ENOTCONN
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=0, gid=0) as w:
        assert w.mounted and w.uid == 0 and w.gid == 0
    assert not w.mounted


def test_mount_errors(daemon):
    with pytest.raises(FileNotFoundError) as ei:
        proxyfs.Volume("no-such-volume", server=daemon.addr).mount()
    assert ei.value.filename == "no-such-volume"
    v = proxyfs.Volume(VOLUME, server=f"127.0.0.1:{free_port()}")
    with pytest.raises(OSError) as ei:
        v.mount()
    assert ei.value.errno == errno.ENODEV
    assert not v.mounted


def test_server_from_environment(daemon, monkeypatch):
    monkeypatch.setenv("PROXYFS_SERVER", daemon.addr)
    with proxyfs.Volume(VOLUME, uid=0, gid=0) as v:
        assert v.server == daemon.addr and v.exists("/")


def test_read_only_mount(daemon, testdir):
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                        gid=USER_GID, read_only=True) as v:
        assert v.isdir(testdir)
        with pytest.raises(OSError) as ei:
            v.mkdir(testdir + "/x")
        assert ei.value.errno == errno.EROFS
        assert not v.access(testdir, os.W_OK)
        assert v.access(testdir, os.R_OK)


def test_umount_closes_open_files(daemon, testdir):
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                       gid=USER_GID)
    v.mount()
    f = v.fopen(testdir + "/f", "wb")
    v.umount()
    assert f.closed
    with pytest.raises(ValueError):
        f.write(b"x")


# ---------------------------------------------------------------- stat

def test_stat_family(vol):
    write(vol, "f", b"12345")
    vol.mkdir("d")
    vol.symlink("f", "l")
    vol.symlink("missing", "dangling")
    st = vol.stat("f")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 5
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    assert st.st_nlink == 1 and st.st_blksize > 0
    assert stat.S_ISLNK(vol.lstat("l").st_mode)
    assert vol.stat("l").st_ino == st.st_ino
    assert vol.exists("f") and vol.exists("l") and vol.exists("d")
    assert not vol.exists("dangling") and not vol.exists("nope")
    assert vol.isfile("f") and vol.isfile("l") and not vol.isfile("d")
    assert vol.isdir("d") and not vol.isdir("f") and not vol.isdir("nope")
    assert vol.islink("l") and vol.islink("dangling") and not vol.islink("f")
    assert not vol.islink("nope")
    assert vol.getsize("f") == 5
    now = time.time()
    for t in (vol.getatime("f"), vol.getmtime("f"), vol.getctime("f")):
        assert abs(t - now) < 60
    assert vol.samefile("f", "l") and not vol.samefile("f", "d")
    assert vol.realpath("l") == vol.getcwd() + "/f"
    assert vol.realpath(b"l") == os.fsencode(vol.getcwd() + "/f")


def test_path_types(vol):
    write(vol, "p", b"x")
    assert vol.stat(b"p").st_size == 1
    assert vol.stat(pathlib.PurePosixPath("p")).st_size == 1
    assert vol.stat(vol.getcwd() + "/p").st_size == 1
    with pytest.raises(ValueError):
        vol.stat("a\0b")
    with pytest.raises(FileNotFoundError):
        vol.stat("")
    with pytest.raises(TypeError):
        vol.stat(3)  # type: ignore[arg-type]


def test_stat_errors_carry_errno_and_filename(vol):
    with pytest.raises(FileNotFoundError) as ei:
        vol.stat("nope")
    assert ei.value.errno == errno.ENOENT and ei.value.filename == "nope"
    with pytest.raises(FileNotFoundError) as ei:
        vol.lstat(b"nope")
    assert ei.value.filename == b"nope"
    write(vol, "f")
    with pytest.raises(NotADirectoryError) as ei:
        vol.stat("f/x")
    assert ei.value.filename == "f/x"
    vol.symlink("loop", "loop")
    with pytest.raises(OSError) as ei:
        vol.stat("loop")
    assert ei.value.errno == errno.ELOOP
    with pytest.raises(FileNotFoundError) as ei:
        vol.getsize("nope")
    assert proxyfs.last_error() != ""


def test_chdir_getcwd(vol, testdir):
    assert vol.getcwd() == testdir
    vol.makedirs("a/b")
    vol.symlink("a", "la")
    vol.chdir("la/b")
    assert vol.getcwd() == testdir + "/a/b"
    write(vol, "f")
    assert vol.exists(testdir + "/a/b/f")
    vol.chdir("..")
    assert vol.getcwd() == testdir + "/a"
    vol.chdir("/")
    assert vol.getcwd() == "/"
    assert testdir.lstrip("/") in vol.listdir(".")
    with pytest.raises(FileNotFoundError):
        vol.chdir("/nope")
    with pytest.raises(NotADirectoryError):
        vol.chdir(testdir + "/a/b/f")
    assert vol.getcwd() == "/"


def test_statvfs(vol):
    sv = vol.statvfs()
    assert sv.f_bsize > 0 and sv.f_blocks >= sv.f_bfree
    assert sv.f_namemax == 255
    assert vol.statvfs(".").f_blocks == sv.f_blocks
    with pytest.raises(FileNotFoundError):
        vol.statvfs("nope")


# ---------------------------------------------------------------- directories

def test_mkdir_makedirs_rmdir(vol):
    vol.mkdir("d")
    assert stat.S_IMODE(vol.stat("d").st_mode) == 0o755  # 0777 - umask 022
    vol.mkdir("m", 0o700)
    assert stat.S_IMODE(vol.stat("m").st_mode) == 0o700
    with pytest.raises(FileExistsError) as ei:
        vol.mkdir("d")
    assert ei.value.filename == "d"
    with pytest.raises(FileNotFoundError):
        vol.mkdir("x/y")
    vol.makedirs("x/y/z/")
    assert vol.isdir("x/y/z")
    with pytest.raises(FileExistsError):
        vol.makedirs("x/y/z")
    vol.makedirs("x/y/z", exist_ok=True)
    write(vol, "f")
    with pytest.raises(FileExistsError):
        vol.makedirs("f", exist_ok=True)
    with pytest.raises(OSError) as ei:
        vol.rmdir("x")
    assert ei.value.errno == errno.ENOTEMPTY and ei.value.filename == "x"
    with pytest.raises(NotADirectoryError):
        vol.rmdir("f")
    with pytest.raises(FileNotFoundError):
        vol.rmdir("nope")
    vol.rmdir("x/y/z")
    assert not vol.exists("x/y/z")


def test_listdir_scandir(vol):
    names = {"a", "b.txt", "ü-é", "d", "l"}
    for n in ("a", "b.txt", "ü-é"):
        write(vol, n, n.encode())
    vol.mkdir("d")
    vol.symlink("d", "l")
    assert set(vol.listdir()) == names
    assert set(vol.listdir(".")) == names
    assert set(vol.listdir(b".")) == {os.fsencode(n) for n in names}
    assert set(vol.listdir(vol.getcwd())) == names
    assert vol.listdir("d") == []
    got = dict(vol.listdir_with_stat("."))
    assert set(got) == names
    assert got["b.txt"].st_size == 5 and stat.S_ISDIR(got["d"].st_mode)
    assert stat.S_ISLNK(got["l"].st_mode)
    ents = {e.name: e for e in vol.scandir()}
    assert set(ents) == names
    e = ents["b.txt"]
    assert e.path == "./b.txt" and os.fspath(e) == "./b.txt"
    assert e.is_file() and not e.is_dir() and not e.is_symlink()
    assert e.inode() == vol.stat("b.txt").st_ino
    assert e.stat().st_size == 5 and "b.txt" in repr(e)
    link = ents["l"]
    assert link.is_symlink() and not link.is_dir()
    assert link.is_dir(follow_symlinks=True)
    assert stat.S_ISDIR(link.stat(follow_symlinks=True).st_mode)
    with vol.scandir(b"d") as it:
        assert list(it) == []
    with vol.scandir(vol.getcwd()) as it:
        first = next(it)
        assert first.path == vol.getcwd() + "/" + first.name
    bents = list(vol.scandir(b"."))
    assert all(isinstance(x.name, bytes) for x in bents)


def test_listdir_errors(vol):
    write(vol, "f")
    with pytest.raises(FileNotFoundError) as ei:
        vol.listdir("nope")
    assert ei.value.filename == "nope"
    with pytest.raises(NotADirectoryError) as ei:
        vol.listdir("f")
    assert ei.value.filename == "f"
    with pytest.raises(NotADirectoryError):
        list(vol.scandir("f"))
    with pytest.raises(FileNotFoundError):
        vol.listdir_with_stat("nope")


def test_walk(vol):
    vol.makedirs("t/a/aa")
    vol.makedirs("t/b")
    write(vol, "t/f1")
    write(vol, "t/a/f2")
    write(vol, "t/a/aa/f3")
    vol.symlink("a", "t/la")
    got = {p: (sorted(d), sorted(f)) for p, d, f in vol.walk("t")}
    assert got == {"t": (["a", "b", "la"], ["f1"]), "t/a": (["aa"], ["f2"]),
                   "t/a/aa": ([], ["f3"]), "t/b": ([], [])}
    order = [p for p, _, _ in vol.walk("t", topdown=False)]
    assert order.index("t/a/aa") < order.index("t/a") < order.index("t")
    follow = {p for p, _, _ in vol.walk("t", followlinks=True)}
    assert "t/la" in follow and "t/la/aa" in follow
    pruned = []
    for p, d, f in vol.walk("t"):
        pruned.append(p)
        if "a" in d:
            d.remove("a")
    assert "t/a" not in pruned and "t/b" in pruned
    errs = []
    assert list(vol.walk("nope", onerror=errs.append)) == []
    assert isinstance(errs[0], FileNotFoundError)
    assert [p for p, _, _ in vol.walk(b"t/b")] == [b"t/b"]


def test_rmtree(vol):
    vol.makedirs("t/a/b")
    write(vol, "t/a/b/f")
    write(vol, "t/f")
    vol.symlink("/nowhere", "t/a/l")
    vol.rmtree("t")
    assert not vol.exists("t")
    with pytest.raises(FileNotFoundError) as ei:
        vol.rmtree("t")
    assert ei.value.filename == "t"
    vol.rmtree("t", ignore_errors=True)
    vol.mkdir("d")
    vol.symlink("d", "ld")
    with pytest.raises(OSError):
        vol.rmtree("ld")
    seen = []
    vol.rmtree("nope", onerror=lambda fn, p, ei: seen.append((p, ei[0])))
    assert seen == [("nope", FileNotFoundError)]


def test_rmtree_without_permission_reports_each_error(vol, other, root):
    vol.makedirs("t/sub")
    write(vol, "t/sub/f")
    errs = []
    other.rmtree("t", onerror=lambda fn, p, ei: errs.append(ei[1]))
    assert errs and all(isinstance(e, PermissionError) for e in errs)
    assert vol.exists("t/sub/f")


# ---------------------------------------------------------------- names

def test_rename_unlink(vol):
    write(vol, "a", b"A")
    write(vol, "b", b"B")
    vol.rename("a", "b")
    assert read(vol, "b") == b"A" and not vol.exists("a")
    vol.replace("b", "c")
    vol.mkdir("d")
    vol.mkdir("e")
    write(vol, "e/x")
    with pytest.raises(OSError) as ei:
        vol.rename("d", "e")
    assert ei.value.errno in (errno.ENOTEMPTY, errno.EEXIST)
    assert ei.value.filename == "d" and ei.value.filename2 == "e"
    with pytest.raises(IsADirectoryError):
        vol.rename("c", "d")
    with pytest.raises(FileNotFoundError) as ei:
        vol.rename("nope", "z")
    assert ei.value.filename == "nope"
    with pytest.raises(IsADirectoryError) as ei:
        vol.unlink("d")
    assert ei.value.filename == "d"
    with pytest.raises(IsADirectoryError):
        vol.remove("d")
    vol.remove("c")
    with pytest.raises(FileNotFoundError):
        vol.unlink("c")


def test_symlink_readlink_link(vol):
    write(vol, "f", b"hello")
    vol.symlink("f", "l")
    vol.symlink("/abs/target", "abs")
    assert vol.readlink("l") == "f"
    assert vol.readlink(b"abs") == b"/abs/target"
    assert read(vol, "l") == b"hello"
    with pytest.raises(FileExistsError) as ei:
        vol.symlink("x", "l")
    assert ei.value.filename2 == "l"
    with pytest.raises(OSError) as ei:
        vol.readlink("f")
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        vol.readlink("nope")
    vol.link("f", "hard")
    assert vol.stat("f").st_nlink == 2
    assert vol.samefile("f", "hard")
    with pytest.raises(FileExistsError):
        vol.link("f", "hard")
    vol.mkdir("d")
    with pytest.raises(PermissionError):
        vol.link("d", "dlink")
    with pytest.raises(FileNotFoundError):
        vol.link("nope", "x")


def test_mknod(vol):
    vol.mknod("n", 0o640 | stat.S_IFREG)
    st = vol.stat("n")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    assert stat.S_IMODE(st.st_mode) == 0o640
    vol.mknod("n2")
    with pytest.raises(OSError) as ei:
        vol.mknod("fifo", 0o600 | stat.S_IFIFO)
    assert ei.value.errno == errno.ENOTSUP and ei.value.filename == "fifo"


# ---------------------------------------------------------------- attributes

def test_chmod_chown_utime(vol, root, testdir):
    write(vol, "f")
    vol.symlink("f", "l")
    vol.chmod("f", 0o640)
    assert stat.S_IMODE(vol.stat("f").st_mode) == 0o640
    vol.chmod("l", 0o600)  # follows the link
    assert stat.S_IMODE(vol.stat("f").st_mode) == 0o600
    with pytest.raises(FileNotFoundError):
        vol.chmod("nope", 0o600)
    # Only root gives a file away.
    with pytest.raises(PermissionError) as ei:
        vol.chown("f", OTHER_UID, -1)
    assert ei.value.filename == "f"
    root.chown(testdir + "/l", OTHER_UID, OTHER_GID)
    assert vol.stat("f").st_uid == OTHER_UID
    root.lchown(testdir + "/l", USER_UID, -1)
    assert vol.lstat("l").st_uid == USER_UID
    assert vol.stat("f").st_gid == OTHER_GID
    root.chown(testdir + "/f", USER_UID, USER_GID)
    vol.utime("f", (1_000_000_000.5, 1_100_000_000.25))
    st = vol.stat("f")
    assert st.st_atime_ns == 1_000_000_000_500_000_000
    assert st.st_mtime_ns == 1_100_000_000_250_000_000
    vol.utime("f", ns=(-5_000_000_000, 7))  # before 1970
    st = vol.stat("f")
    assert st.st_atime_ns == -5_000_000_000 and st.st_mtime_ns == 7
    assert st.st_atime == -5.0
    vol.utime("f")
    assert abs(vol.getmtime("f") - time.time()) < 60
    vol.utime("l", ns=(1, 2), follow_symlinks=False)
    assert vol.lstat("l").st_mtime_ns == 2
    with pytest.raises(TypeError):
        vol.utime("f", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        vol.utime("f", (1, 2), ns=(1, 2))


def test_access(vol, other, root, testdir):
    write(vol, "f")
    vol.chmod("f", 0o640)
    write(vol, "x")
    vol.chmod("x", 0o750)
    assert vol.access("f", os.F_OK) and not vol.access("nope", os.F_OK)
    assert vol.access("f", os.R_OK | os.W_OK)
    assert not vol.access("f", os.X_OK)
    assert vol.access("x", os.X_OK)
    assert not other.access("f", os.R_OK)
    assert other.access("f", os.F_OK)
    assert not other.access("x", os.X_OK)
    assert other.access(".", os.R_OK | os.X_OK)
    assert not other.access(".", os.W_OK)
    assert root.access(testdir + "/f", os.R_OK | os.W_OK)
    assert not root.access(testdir + "/f", os.X_OK)
    assert root.access(testdir + "/x", os.X_OK)
    # The group's bits for a member of the file's group.
    other.setfsgid(USER_GID)
    assert other.access("f", os.R_OK) and not other.access("f", os.W_OK)


def test_permission_denied_as_another_user(vol, other):
    write(vol, "f", b"secret")
    vol.chmod("f", 0o600)
    vol.mkdir("private", 0o700)
    with pytest.raises(PermissionError) as ei:
        other.fopen("f", "rb")
    assert ei.value.errno == errno.EACCES and ei.value.filename == "f"
    with pytest.raises(PermissionError):
        write(other, "new")
    with pytest.raises(PermissionError) as ei:
        other.listdir("private")
    assert ei.value.filename == "private"
    with pytest.raises(PermissionError):
        other.stat("private/x")
    with pytest.raises(PermissionError):
        other.unlink("f")
    with pytest.raises(PermissionError):
        other.chmod("f", 0o777)
    with pytest.raises(PermissionError):
        other.setxattr("f", "user.k", b"v")


def test_setfsuid_setfsgid(vol, other, root, testdir):
    write(vol, "f", b"mine")
    vol.chmod("f", 0o600)
    with pytest.raises(PermissionError):
        read(other, "f")
    assert other.setfsuid(USER_UID) == OTHER_UID
    assert other.setfsgid(USER_GID) == OTHER_GID
    assert (other.uid, other.gid) == (USER_UID, USER_GID)
    assert read(other, "f") == b"mine"
    write(other, "g")
    assert vol.stat("g").st_uid == USER_UID
    # A file opened before a switch keeps its identity.
    f = other.fopen("g", "rb")
    other.setfsuid(OTHER_UID)
    other.setfsgid(OTHER_GID)
    assert f.read() == b"data"
    f.close()
    with pytest.raises(PermissionError):
        read(other, "f")
    # Root creates as the identity it switches to.
    root.setfsuid(USER_UID)
    root.setfsgid(USER_GID)
    try:
        write(root, testdir + "/byuser")
        with pytest.raises(PermissionError):
            root.chown(testdir + "/byuser", 0, 0)
    finally:
        root.setfsuid(0)
        root.setfsgid(0)
    st = vol.stat("byuser")
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    root.chown(testdir + "/byuser", 0, 0)


# ---------------------------------------------------------------- xattrs

def test_xattrs(vol):
    write(vol, "f")
    vol.symlink("f", "l")
    assert vol.listxattr("f") == []
    vol.setxattr("f", "user.a", b"1")
    vol.setxattr("f", b"user.b", "two")
    vol.setxattr("l", "user.c", b"")  # through the link
    assert sorted(vol.listxattr("f")) == ["user.a", "user.b", "user.c"]
    assert vol.getxattr("f", "user.a") == b"1"
    assert vol.getxattr("l", "user.b") == b"two"
    assert vol.getxattr("f", "user.c") == b""
    assert vol.getxattr("f", "user.b", size=10) == b"two"
    with pytest.raises(OSError) as ei:
        vol.getxattr("f", "user.b", size=1)
    assert ei.value.errno == errno.ERANGE
    with pytest.raises(OSError) as ei:
        vol.listxattr("f", size=2)
    assert ei.value.errno == errno.ERANGE
    assert sorted(vol.listxattr("f", size=100)) == ["user.a", "user.b",
                                                     "user.c"]
    with pytest.raises(FileExistsError):
        vol.setxattr("f", "user.a", b"x", proxyfs.XATTR_CREATE)
    with pytest.raises(OSError) as ei:
        vol.setxattr("f", "user.z", b"x", proxyfs.XATTR_REPLACE)
    assert ei.value.errno == errno.ENODATA and ei.value.filename == "f"
    vol.setxattr("f", "user.a", b"3", proxyfs.XATTR_REPLACE)
    assert vol.getxattr("f", "user.a") == b"3"
    with pytest.raises(OSError) as ei:
        vol.getxattr("f", "user.none")
    assert ei.value.errno == errno.ENODATA
    vol.removexattr("f", "user.a")
    with pytest.raises(OSError) as ei:
        vol.removexattr("f", "user.a")
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(FileNotFoundError):
        vol.getxattr("nope", "user.a")
    # The link itself, without following: the server (as Linux for
    # user.*) keeps attributes only on files and directories.
    assert vol.listxattr("l", follow_symlinks=False) == []
    with pytest.raises(PermissionError) as ei:
        vol.setxattr("l", "user.own", b"L", follow_symlinks=False)
    assert ei.value.filename == "l"
    with pytest.raises(OSError) as ei:
        vol.getxattr("l", "user.a", follow_symlinks=False)
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError):
        vol.removexattr("l", "user.a", follow_symlinks=False)
    big = os.urandom(60000)
    vol.setxattr("f", "user.big", big)
    assert vol.getxattr("f", "user.big") == big
    vol.mkdir("d")
    vol.setxattr("d", "user.dir", b"d")
    assert vol.getxattr("d", "user.dir") == b"d"


# ---------------------------------------------------------------- copies

def test_copyfile_copy_copy2_copystat_copymode(vol):
    data = os.urandom(300_000)
    write(vol, "src", data)
    vol.chmod("src", 0o640)
    vol.setxattr("src", "user.tag", b"t")
    vol.utime("src", ns=(1_000_000_000_000_000_001, 1_200_000_000_000_000_002))
    assert vol.copyfile("src", "c1") == "c1"
    assert read(vol, "c1") == data
    assert stat.S_IMODE(vol.stat("c1").st_mode) == 0o644
    write(vol, "c1", b"x" * 1_000_000)  # copyfile truncates a bigger dst
    vol.copyfile("src", "c1")
    assert read(vol, "c1") == data
    vol.mkdir("d")
    assert vol.copy("src", "d") == "d/src"
    assert read(vol, "d/src") == data
    assert stat.S_IMODE(vol.stat("d/src").st_mode) == 0o640
    assert vol.listxattr("d/src") == []
    vol.copy2("src", "c2")
    st, st2 = vol.stat("src"), vol.stat("c2")
    assert st2.st_mtime_ns == st.st_mtime_ns
    assert st2.st_atime_ns == st.st_atime_ns
    assert stat.S_IMODE(st2.st_mode) == 0o640
    assert vol.getxattr("c2", "user.tag") == b"t"
    write(vol, "e", b"")
    vol.copymode("src", "e")
    assert stat.S_IMODE(vol.stat("e").st_mode) == 0o640
    vol.copystat("src", "e")
    assert vol.stat("e").st_mtime_ns == st.st_mtime_ns
    vol.copyfile("e", "e2")
    assert read(vol, "e2") == b""
    vol.link("src", "hard")
    with pytest.raises(proxyfs.SameFileError):
        vol.copyfile("src", "hard")
    with pytest.raises(FileNotFoundError):
        vol.copyfile("nope", "x")
    with pytest.raises(IsADirectoryError):
        vol.copyfile("src", "d")
    with pytest.raises(IsADirectoryError):
        vol.copyfile("d", "y")


def test_copytree_move(vol):
    vol.makedirs("t/a/b")
    write(vol, "t/f", b"F")
    write(vol, "t/a/b/g", b"G")
    write(vol, "t/skip.tmp", b"S")
    vol.symlink("f", "t/lf")
    vol.chmod("t/a", 0o750)
    assert vol.copytree("t", "u", symlinks=True,
                        ignore=lambda d, names: [n for n in names
                                                 if n.endswith(".tmp")]) == "u"
    assert read(vol, "u/a/b/g") == b"G" and read(vol, "u/f") == b"F"
    assert vol.readlink("u/lf") == "f"
    assert not vol.exists("u/skip.tmp")
    assert stat.S_IMODE(vol.stat("u/a").st_mode) == 0o750
    vol.copytree("t", "v")  # links copied as files
    assert not vol.islink("v/lf") and read(vol, "v/lf") == b"F"
    with pytest.raises(FileExistsError):
        vol.copytree("t", "v")
    vol.copytree("t", "v", dirs_exist_ok=True)
    with pytest.raises(FileNotFoundError):
        vol.copytree("nope", "w")
    # Errors are gathered into one shutil.Error.
    vol.chmod("t/a/b/g", 0)
    with pytest.raises(proxyfs.Error) as ei:
        vol.copytree("t", "w")
    assert any("g" in str(e) for e in ei.value.args[0])
    assert read(vol, "w/f") == b"F"
    assert vol.move("u", "moved") == "moved"
    assert not vol.exists("u") and read(vol, "moved/f") == b"F"
    vol.mkdir("into")
    assert vol.move("moved", "into") == "into/moved"
    assert vol.isdir("into/moved/a/b")
    vol.mkdir("into2")
    vol.mkdir("into2/moved")
    with pytest.raises(proxyfs.Error):
        vol.move("into/moved", "into2")


def test_copyfileobj_between_volume_files(vol):
    data = os.urandom(3_000_000)
    write(vol, "a", data)
    with vol.fopen("a", "rb") as s, vol.fopen("b", "wb") as d:
        proxyfs.Volume.copyfileobj(s, d, 65536)
    assert read(vol, "b") == data


# ------------------------------------------------------------- gateways


@pytest.mark.parametrize("as_list", [True, False])
def test_server_list(daemon, testdir, as_list):
    """A list of gateways (or one string of them, comma-separated) passes
    through to the library, which moves past an address that refuses
    connections to the next and mounts there."""
    dead = f"127.0.0.1:{free_port()}"
    server = [dead, daemon.addr] if as_list else f"{dead}, {daemon.addr}"
    v = proxyfs.Volume(VOLUME, server=server, uid=USER_UID, gid=USER_GID)
    assert v.server == (f"{dead},{daemon.addr}" if as_list else server)
    v.mount()
    try:
        v.chdir(testdir)
        write(v, "through-the-second", b"moved")
        assert read(v, "through-the-second") == b"moved"
    finally:
        v.umount()
