"""Smaller paths: aliases, options, refusals of read-only and write-only
files, cleanup by the garbage collector."""

from __future__ import annotations

import errno
import gc
import io
import stat

import pytest

import proxyfs
from conftest import USER_GID, USER_UID, VOLUME


def test_user_name_aliases_and_gc(daemon, testdir):
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                       gid=USER_GID, user="alice")
    v.mount()
    assert v.opendir(testdir) is not None
    with v.scandir(testdir) as it:
        assert list(it) == []
    v.unmount()
    assert not v.mounted
    w = proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                       gid=USER_GID)
    w.mount()
    f = w.fopen(testdir + "/gc", "wb")
    f.write(b"x")
    del f, w  # the File's and the Volume's finalizers close and unmount
    gc.collect()


def test_scandir_closed_early_and_exhausted(vol):
    for i in range(5):
        vol.mknod(f"f{i}")
    it = vol.scandir(".")
    next(it)
    it.close()
    with pytest.raises(StopIteration):
        next(it)
    it = vol.scandir(".")
    assert len(list(it)) == 5
    assert list(it) == []


def test_read_only_and_write_only_files_refuse(vol):
    with vol.fopen("w", "wb") as f:
        with pytest.raises(io.UnsupportedOperation):
            f.pread(1, 0)
        with pytest.raises(io.UnsupportedOperation):
            f.readinto(bytearray(1))
    with vol.fopen("w", "rb") as f:
        with pytest.raises(io.UnsupportedOperation):
            f.pwrite(b"x", 0)
        with pytest.raises(OSError) as ei:
            f.seek(-1, proxyfs.SEEK_DATA)
        assert ei.value.errno == errno.ENXIO


def test_read_only_volume_refuses_writes(daemon, vol):
    with vol.fopen("f", "wb") as f:
        f.write(b"data")
    cwd = vol.getcwd()
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                        gid=USER_GID, read_only=True) as ro:
        ro.chdir(cwd)
        with ro.fopen("f", "rb") as f:
            assert f.read() == b"data"
        for call in (lambda: ro.fopen("f", "wb"), lambda: ro.unlink("f"),
                     lambda: ro.copyfile("f", "g"),
                     lambda: ro.setxattr("f", "user.a", b"1"),
                     lambda: ro.chmod("f", 0o600)):
            with pytest.raises(OSError) as ei:
                call()
            assert ei.value.errno == errno.EROFS


def test_symlink_own_mode_and_rmtree_of_a_link(vol):
    vol.mkdir("d")
    vol.symlink("d", "l")
    vol.rmtree("l", ignore_errors=True)
    assert vol.islink("l") and vol.isdir("d")
    seen = []
    vol.rmtree("l", onerror=lambda fn, p, ei: seen.append(ei[0]))
    assert seen == [OSError]
    # chmod without following: the link's own mode (the server keeps it
    # or refuses it; the target is unchanged either way).
    before = stat.S_IMODE(vol.stat("d").st_mode)
    try:
        vol.chmod("l", 0o700, follow_symlinks=False)
    except PermissionError:
        pass
    assert stat.S_IMODE(vol.stat("d").st_mode) == before


def test_copytree_follows_links_to_directories(vol):
    vol.makedirs("src/real")
    with vol.fopen("src/real/f", "wb") as f:
        f.write(b"in real")
    vol.symlink("real", "src/alias")
    vol.copytree("src", "dst")
    assert vol.isdir("dst/alias") and not vol.islink("dst/alias")
    with vol.fopen("dst/alias/f", "rb") as f:
        assert f.read() == b"in real"


def test_logging_calls_are_accepted_and_volume_id_is_not_supported(vol):
    vol.set_logging("/dev/null", 7)
    vol.disable_logging()
    with pytest.raises(OSError) as ei:
        vol.get_volume_id()
    assert ei.value.errno == errno.ENOTSUP
    assert vol.stat("/").st_dev == vol.stat(".").st_dev
