"""Large files, large directories, trees, threads sharing one Volume.

``PROXYFS_PYTEST_BIG_MB`` sets the size of the large-file round trip
(default 1024: 1 GiB, as issue 17 asks; ``make python-test`` keeps it).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time

import proxyfs
from conftest import USER_GID, USER_UID, VOLUME


BIG_MB = int(os.environ.get("PROXYFS_PYTEST_BIG_MB", "1024"))


def test_large_file_round_trip_with_checksum(vol):
    chunk = 8 << 20
    # A pattern that differs per chunk, so that misplaced chunks show.
    seed = os.urandom(chunk)
    total = BIG_MB << 20
    h = hashlib.sha256()
    buf = bytearray(seed)
    with vol.fopen("big", "wb") as f:
        off = 0
        i = 0
        while off < total:
            n = min(chunk, total - off)
            buf[:8] = i.to_bytes(8, "little")
            view = memoryview(buf)[:n]
            h.update(view)
            assert f.write(view) == n
            off += n
            i += 1
    assert vol.getsize("big") == total
    h2 = hashlib.sha256()
    rbuf = bytearray(chunk)
    with vol.fopen("big", "rb") as f:
        got = 0
        while True:
            n = f.readinto(rbuf)
            if n == 0:
                break
            h2.update(memoryview(rbuf)[:n])
            got += n
    assert got == total
    assert h2.hexdigest() == h.hexdigest()
    # A server-side copy of it matches too (and is checked by reading).
    vol.copyfile("big", "big2")
    h3 = hashlib.sha256()
    with vol.fopen("big2", "rb") as f:
        while n := f.readinto(rbuf):
            h3.update(memoryview(rbuf)[:n])
    assert h3.hexdigest() == h.hexdigest()


def test_ten_thousand_entries(vol):
    n = 10_000
    vol.mkdir("many")
    names = {f"entry-{i:05d}" for i in range(n)}
    for i, name in enumerate(sorted(names)):
        if i % 10 == 0:
            vol.mkdir("many/" + name)
        else:
            with vol.open("many/" + name,
                          os.O_WRONLY | os.O_CREAT | os.O_EXCL) as f:
                if i % 7 == 0:
                    f.write(b"x" * (i % 1000))
    seen = {}
    with vol.scandir("many") as it:
        for e in it:
            seen[e.name] = e
    assert set(seen) == names
    for i, name in enumerate(sorted(names)):
        e = seen[name]
        if i % 10 == 0:
            assert e.is_dir() and not e.is_file()
        else:
            assert e.is_file()
            assert e.stat().st_size == (i % 1000 if i % 7 == 0 else 0)
    listed = vol.listdir_with_stat("many")
    assert len(listed) == n
    assert {nm for nm, _ in listed} == names
    assert sum(1 for _, st in listed if stat.S_ISDIR(st.st_mode)) == n // 10
    assert set(vol.listdir("many")) == names
    vol.rmtree("many")
    assert not vol.exists("many")


def test_walk_copytree_rmtree_on_a_tree(vol):
    # 20 directories of 4 subdirectories of 30 files: 2 400 files.
    count = 0
    for a in range(20):
        for b in range(4):
            d = f"tree/d{a:02d}/s{b}"
            vol.makedirs(d)
            for c in range(30):
                with vol.open(f"{d}/f{c:02d}",
                              os.O_WRONLY | os.O_CREAT | os.O_EXCL) as f:
                    f.write(f"{a}/{b}/{c}".encode())
                count += 1
    walked = sum(len(files) for _, _, files in vol.walk("tree"))
    assert walked == count == 2400
    vol.copytree("tree", "copy")
    assert sum(len(files) for _, _, files in vol.walk("copy")) == count
    with vol.fopen("copy/d19/s3/f29", "rb") as f:
        assert f.read() == b"19/3/29"
    vol.rmtree("tree")
    vol.rmtree("copy")
    assert vol.listdir(".") == []


def test_threads_share_one_volume(vol):
    nthreads, per = 8, 60
    errors: list[BaseException] = []
    barrier = threading.Barrier(nthreads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            d = f"t{t}"
            vol.mkdir(d)
            for i in range(per):
                data = f"{t}:{i}".encode() * (i + 1)
                with vol.fopen(f"{d}/f{i}", "wb") as f:
                    f.write(data)
                with vol.fopen(f"{d}/f{i}", "rb") as f:
                    assert f.read() == data
                assert vol.stat(f"{d}/f{i}").st_size == len(data)
                if i % 3 == 0:
                    vol.rename(f"{d}/f{i}", f"{d}/r{i}")
            assert len(vol.listdir(d)) == per
            assert len(vol.listdir_with_stat(".")) >= 1
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,))
               for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sorted(vol.listdir(".")) == sorted(f"t{t}" for t in range(nthreads))


def test_threads_share_one_file(vol):
    block = 4096
    nthreads, per = 6, 40
    errors: list[BaseException] = []
    with vol.fopen("shared", "w+b") as f:
        def work(t: int) -> None:
            try:
                for i in range(per):
                    off = (i * nthreads + t) * block
                    data = bytes([t + 1]) * block
                    assert f.pwrite(data, off) == block
                    assert f.pread(block, off) == data
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,))
                   for t in range(nthreads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        f.seek(0)
        data = f.read()
    assert len(data) == nthreads * per * block
    for k in range(nthreads * per):
        assert data[k * block:(k + 1) * block] == bytes([k % nthreads + 1]) * block


def test_setfsuid_while_threads_call(vol, root, testdir):
    """Switching identities while other threads make calls: no call uses a
    released mount handle."""
    stop = threading.Event()
    errors: list[BaseException] = []
    with vol.fopen("f", "wb") as f:
        f.write(b"x")

    def reader() -> None:
        try:
            while not stop.is_set():
                root.stat(testdir + "/f")
                root.listdir(testdir)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for th in threads:
        th.start()
    try:
        for i in range(40):
            root.setfsuid(0 if i % 2 else 1000 + i)
    finally:
        root.setfsuid(0)
        stop.set()
        for th in threads:
            th.join()
    assert errors == []
    assert root.uid == 0


def test_umount_while_threads_use_its_files(daemon, testdir):
    """umount closes files other threads are using: their calls end with
    ValueError (closed file), never a crash or a call on a freed handle."""
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                       gid=USER_GID)
    v.mount()
    files = []
    for i in range(4):
        f = v.fopen(f"{testdir}/u{i}", "w+b")
        f.write(b"x" * 4096)
        files.append(f)
    started = threading.Barrier(len(files) + 1)
    outcome: list[object] = []

    def hammer(f) -> None:
        started.wait()
        try:
            while True:
                f.fstat()
                f.pread(4096, 0)
                f.fsetxattr("user.k", b"v")
                f.pwrite(b"y", 1)
        except ValueError:
            outcome.append("closed")
        except BaseException as e:
            outcome.append(e)

    threads = [threading.Thread(target=hammer, args=(f,)) for f in files]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.2)
    v.umount()
    for t in threads:
        t.join(30)
    assert outcome == ["closed"] * len(files)
    assert all(f.closed for f in files)
