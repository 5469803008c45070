#!/usr/bin/env python3
"""pybench.py - the Python bindings against the C library, in one run.

    pybench.py [--proxyfsd PATH] [--mib MIB] [-n ENTRIES] [--rounds R]
               [--quick]

First it runs the C benchmark (``bench/bench``, built by ``make -C bench``)
with ``-only write_seq,read_seq,readdir_plus`` and the same sizes, and
takes its single-thread figures as the baselines. Then it starts its own
proxyfsd (loopback TCP on a free port, engine "local", a fresh temp dir
under $TMPDIR or /tmp), mounts it with ``proxyfs.Volume`` and measures the
same work through the bindings:

  py_write_seq  MIB MiB through ``File.write`` in 1 MiB writes, then
                ``fsync`` (the C phase: proxyfs_write of 1 MiB, then
                proxyfs_flush); target >= 0.8x the C write_seq
  py_read_seq   the file read back through ``File.readinto`` of 1 MiB,
                every block checked; target >= 0.8x the C read_seq
  py_scandir    ``Volume.scandir`` of a directory of ENTRIES files, each
                entry's ``stat()`` taken (cached: no call); target >= 0.5x
                the C readdir_plus (T=1) rate
  py_listdir_with_stat  the same through ``listdir_with_stat`` (no target)

It does this --rounds times (default 3: C, Python, C, Python, ...) and reports
the best figure of each side, since the machine is shared.

Exit status: 0 when everything ran and verified (targets missed or not),
1 when something broke.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python"))
os.environ.setdefault("PROXYFS_LIBRARY",
                      os.path.join(REPO, "libproxyfs", "libproxyfs.so.2"))

import proxyfs  # noqa: E402

MIB = 1 << 20


def c_baselines(proxyfsd: str, mib: int, n: int) -> dict[str, float]:
    """Run bench/bench for the phases compared; their T=1 figures."""
    cmd = [os.path.join(HERE, "bench"), "-proxyfsd", proxyfsd, "-only",
           "write_seq,read_seq,readdir_plus", "-mib", str(mib), "-n", str(n)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    figs = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^(\w+)\s+T=1\s+([\d.]+)\s", line)
        if m:
            figs[m.group(1)] = float(m.group(2))
    for want in ("write_seq", "read_seq", "readdir_plus"):
        if want not in figs:
            sys.exit(f"pybench: no {want} T=1 line from bench:\n{out.stdout}")
    return figs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(proxyfsd: str, work: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    conf = os.path.join(work, "proxyfsd.toml")
    with open(conf, "w") as f:
        f.write(f'[server]\ntcp = "127.0.0.1:{port}"\nunix = ""\n'
                '[metrics]\nlisten = ""\n[log]\nlevel = "warn"\n'
                '[[volume]]\nname = "default"\nengine = "local"\n'
                f'path = "{work}/data"\nauto_format = true\n')
    log = open(os.path.join(work, "proxyfsd.log"), "ab")
    proc = subprocess.Popen([proxyfsd, "-config", conf], stdout=log,
                            stderr=log)
    for _ in range(1000):
        if proc.poll() is not None:
            sys.exit("pybench: proxyfsd exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.01)
    sys.exit("pybench: proxyfsd does not listen")


def report(phase: str, fig: float, unit: str, base: float, bname: str,
           target: float) -> bool:
    """Print a result line; False if it misses its target."""
    ratio = fig / base if base > 0 else 0.0
    res = "-" if target <= 0 else ("PASS" if ratio >= target else "MISS")
    tgt = f">={target:.2f}" if target > 0 else "-"
    print(f"{phase:<21} {fig:10.1f} {unit:<6} base {base:10.1f} "
          f"{bname:<13} ratio {ratio:6.3f} target {tgt:<6} {res}",
          flush=True)
    return res != "MISS"


def block(i: int, pattern: bytes) -> bytes:
    return i.to_bytes(8, "little") + pattern[8:]


def run(vol: proxyfs.Volume, mib: int, n: int) -> dict[str, float]:
    """The Python phases; their figures."""
    figs = {}
    pattern = os.urandom(MIB)
    blocks = [block(i, pattern) for i in range(min(mib, 64))]
    with vol.fopen("/big", "wb") as f:
        t0 = time.perf_counter()
        for i in range(mib):
            b = blocks[i % len(blocks)]
            if f.write(b) != MIB:
                raise RuntimeError(f"short write at block {i}")
        f.fsync()
        figs["py_write_seq"] = mib / (time.perf_counter() - t0)
    buf = bytearray(MIB)
    with vol.fopen("/big", "rb") as f:
        t0 = time.perf_counter()
        for i in range(mib):
            if f.readinto(buf) != MIB:
                raise RuntimeError(f"short read at block {i}")
            if buf[:8] != blocks[i % len(blocks)][:8]:
                raise RuntimeError(f"block {i} read back wrong")
        figs["py_read_seq"] = mib / (time.perf_counter() - t0)
    if buf != blocks[(mib - 1) % len(blocks)]:
        raise RuntimeError("last block read back wrong")
    vol.unlink("/big")

    vol.mkdir("/dir")
    for i in range(n):
        vol.mknod(f"/dir/f{i:06d}")
    t0 = time.perf_counter()
    count = 0
    size = 0
    for e in vol.scandir("/dir"):
        size += e.stat().st_size
        count += 1
    secs = time.perf_counter() - t0
    if count != n:
        raise RuntimeError(f"scandir: {count} entries, expected {n}")
    # readdir_plus in C counts "." and ".." too.
    figs["py_scandir"] = (count + 2) / secs
    t0 = time.perf_counter()
    got = vol.listdir_with_stat("/dir")
    secs = time.perf_counter() - t0
    if len(got) != n:
        raise RuntimeError("listdir_with_stat: wrong count")
    figs["py_listdir_with_stat"] = (n + 2) / secs
    vol.rmtree("/dir")
    return figs


PHASES = [  # (python phase, unit, C phase, target)
    ("py_write_seq", "MiB/s", "write_seq", 0.8),
    ("py_read_seq", "MiB/s", "read_seq", 0.8),
    ("py_scandir", "ent/s", "readdir_plus", 0.5),
    ("py_listdir_with_stat", "ent/s", "readdir_plus", 0.0),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxyfsd", default=os.path.join(REPO, "bin",
                                                       "proxyfsd"))
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3,
                    help="C then Python, this many times; best of each")
    ap.add_argument("--quick", action="store_true",
                    help="64 MiB and 2000 entries")
    a = ap.parse_args()
    if a.quick:
        a.mib, a.n = 64, 2000
    print(f"# pybench: {a.mib} MiB, {a.n} entries, {a.rounds} round(s); "
          f"Python {sys.version.split()[0]}, {proxyfs.load_library()}")
    best: dict[str, float] = {}
    for r in range(a.rounds):
        base = c_baselines(a.proxyfsd, a.mib, a.n)
        work = tempfile.mkdtemp(prefix="proxyfs-pybench.")
        proc, addr = start_daemon(a.proxyfsd, work)
        try:
            with proxyfs.Volume("default", server=addr, uid=0, gid=0) as vol:
                figs = run(vol, a.mib, a.n)
        finally:
            proc.terminate()
            proc.wait()
            shutil.rmtree(work, ignore_errors=True)
        figs.update(base)
        print(f"# round {r + 1}: " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(figs.items())), flush=True)
        for k, v in figs.items():
            best[k] = max(best.get(k, 0.0), v)
    misses = 0
    for phase, unit, cphase, target in PHASES:
        misses += not report(phase, best[phase], unit, best[cphase],
                             "C " + cphase, target)
    print(f"# pybench: {misses} target(s) missed (best of {a.rounds} "
          f"round(s) each)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"pybench: BROKEN: {e}", file=sys.stderr)
        sys.exit(1)
