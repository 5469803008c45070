"""The daemon killed with SIGKILL and restarted while the bindings are in
use: the C library reconnects, mounts again, reopens the open files, and
the calls (and copies) in progress complete."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time

MIB = 1 << 20


def fill(vol, path: str, size: int) -> str:
    h = hashlib.sha256()
    block = os.urandom(MIB)
    with vol.fopen(path, "wb") as f:
        for i in range(size // MIB):
            b = i.to_bytes(8, "little") + block[8:]
            f.write(b)
            h.update(b)
    return h.hexdigest()


def digest(vol, path: str) -> str:
    h = hashlib.sha256()
    buf = bytearray(4 * MIB)
    with vol.fopen(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(memoryview(buf)[:n])
    return h.hexdigest()


def restart(daemon, pause: float = 0.3) -> None:
    daemon.kill9()
    time.sleep(pause)
    daemon.start()


def test_kill9_in_the_middle_of_a_streamed_copy(vol, daemon):
    size = 96 * MIB
    want = fill(vol, "src", size)
    done: list[BaseException] = []
    copied = [0]

    class Counting:
        """A writer that counts what has been copied so far."""

        def __init__(self, f):
            self.f = f

        def write(self, b):
            n = self.f.write(b)
            copied[0] += n
            return n

    def copy() -> None:
        try:
            with vol.fopen("src", "rb") as s, vol.fopen("dst", "wb") as d:
                shutil.copyfileobj(s, Counting(d), MIB)
        except BaseException as e:
            done.append(e)
        else:
            done.append(None)  # type: ignore[arg-type]

    t = threading.Thread(target=copy)
    t.start()
    while copied[0] < 8 * MIB and t.is_alive():
        time.sleep(0.005)
    assert copied[0] < size, "the copy ended before the kill"
    restart(daemon)
    t.join(120)
    assert not t.is_alive()
    assert done == [None]
    assert vol.getsize("dst") == size
    assert digest(vol, "dst") == want


def test_kill9_during_server_side_copyfile(vol, daemon):
    size = 160 * MIB
    want = fill(vol, "src", size)
    result: list[object] = []

    def copy() -> None:
        try:
            result.append(vol.copyfile("src", "dst"))
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=copy)
    t.start()
    # copyfile creates dst, then asks the server to copy 64 MiB at a time.
    while not vol.exists("dst") and t.is_alive():
        time.sleep(0.001)
    in_flight = t.is_alive()
    restart(daemon)
    t.join(120)
    assert result == ["dst"]
    print(f"copy still in flight at the kill: {in_flight}")
    assert digest(vol, "dst") == want


def test_open_files_and_calls_survive_a_restart(vol, daemon):
    with vol.fopen("kept", "w+b") as kept:
        kept.write(b"kept data")
        gone = vol.fopen("gone", "w+b")
        gone.write(b"unlinked data")
        vol.unlink("gone")
        restart(daemon)
        # Path calls: the library reconnects and mounts again.
        assert vol.listdir(".") == ["kept"]
        assert vol.stat("kept").st_size == 9
        # Open files: reopened by the library (the unlinked one within the
        # daemon's reclaim_grace).
        kept.seek(0)
        assert kept.read() == b"kept data"
        kept.write(b"+")
        gone.seek(0)
        assert gone.read() == b"unlinked data"
        gone.write(b"!")
        assert gone.pread(100, 0) == b"unlinked data!"
        gone.close()
        # Another restart with nothing in flight, then a new file.
        restart(daemon)
        with vol.fopen("after", "w") as f:
            f.write("fine")
    assert vol.getsize("kept") == 10
    with vol.fopen("after") as f:
        assert f.read() == "fine"
    assert sorted(vol.listdir(".")) == ["after", "kept"]
