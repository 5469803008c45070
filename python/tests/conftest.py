"""Fixtures: a real proxyfsd on loopback and volumes mounted on it.

The package is the source tree's (``python/proxyfs``) unless
``PROXYFS_TEST_INSTALLED=1``. The daemon is ``$PROXYFSD`` (default ``bin/proxyfsd`` of the source tree,
made by ``make build``), started once per session in a temporary directory
with a TCP listener on a free 127.0.0.1 port and one local volume
(``auto_format = true``). The library is ``$PROXYFS_LIBRARY`` (default the
source tree's ``libproxyfs/libproxyfs.so.2``, made by ``make lib``).

The volume's root belongs to root (0755) and the server enforces
permissions: the ``root`` fixture mounts as uid 0, and each test gets a
fresh directory owned by the test user (``USER_UID``:``USER_GID``), as
which the ``vol`` fixture mounts, with that directory as its working
directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Iterator, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
# PROXYFS_TEST_INSTALLED=1 tests the package found on sys.path (installed
# with pip or make install) instead of the source tree's.
if not os.environ.get("PROXYFS_TEST_INSTALLED"):
    sys.path.insert(0, os.path.join(REPO, "python"))
os.environ.setdefault("PROXYFS_LIBRARY",
                      os.path.join(REPO, "libproxyfs", "libproxyfs.so.2"))

import proxyfs  # noqa: E402

USER_UID, USER_GID = 1000, 1000
OTHER_UID, OTHER_GID = 2000, 2000
VOLUME = "pyvol"


def free_port() -> int:
    """A loopback TCP port nothing listens on (just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A proxyfsd process with its own config and data directory."""

    def __init__(self, binary: str, workdir: str) -> None:
        self.binary = binary
        self.dir = workdir
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.conf = os.path.join(workdir, "proxyfsd.toml")
        self.log = os.path.join(workdir, "proxyfsd.log")
        self.proc: Optional[subprocess.Popen] = None
        with open(self.conf, "w") as f:
            f.write(f'[server]\ntcp = "{self.addr}"\nunix = ""\n'
                    'mount_grace = "5s"\nreclaim_grace = "10s"\n'
                    '[metrics]\nlisten = ""\n[log]\nlevel = "warn"\n'
                    f'[[volume]]\nname = "{VOLUME}"\nengine = "local"\n'
                    f'path = "{workdir}/data"\nauto_format = true\n')

    def start(self) -> None:
        """Start the daemon and wait until it accepts connections."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-config", self.conf],
                                     stdout=logf, stderr=logf,
                                     cwd=self.dir)
        logf.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxyfsd exited; see {self.log}:\n"
                                   + open(self.log).read()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("proxyfsd did not start listening")

    def kill9(self) -> None:
        """SIGKILL the daemon and reap it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill9()


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    """The session's proxyfsd."""
    binary = os.environ.get("PROXYFSD", os.path.join(REPO, "bin", "proxyfsd"))
    if not os.access(binary, os.X_OK):
        pytest.exit(f"{binary} not found: run `make build` (or set PROXYFSD)",
                    returncode=2)
    work = tempfile.mkdtemp(prefix="proxyfs-pytest.")
    d = Daemon(binary, work)
    d.start()
    yield d
    d.stop()
    subprocess.run(["rm", "-rf", work], check=False)


@pytest.fixture(scope="session")
def root(daemon: Daemon) -> Iterator[proxyfs.Volume]:
    """The volume mounted as root (uid 0), for setting tests up."""
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=0, gid=0, umask=0)
    v.mount()
    yield v
    v.umount()


def _dirname(nodeid: str) -> str:
    return "/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-200:]


@pytest.fixture
def testdir(root: proxyfs.Volume, request: pytest.FixtureRequest) -> str:
    """A fresh directory for the test, owned by the test user, 0755."""
    d = _dirname(request.node.nodeid)
    if root.exists(d):
        root.rmtree(d)
    root.mkdir(d, 0o755)
    root.chown(d, USER_UID, USER_GID)
    return d


@pytest.fixture
def vol(daemon: Daemon, testdir: str) -> Iterator[proxyfs.Volume]:
    """The volume mounted as the test user, in the test's directory."""
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                       gid=USER_GID, timeout=60)
    v.mount()
    v.chdir(testdir)
    yield v
    v.umount()


@pytest.fixture
def other(daemon: Daemon, testdir: str) -> Iterator[proxyfs.Volume]:
    """The volume mounted as another user (neither owner nor group of the
    test's directory)."""
    v = proxyfs.Volume(VOLUME, server=daemon.addr, uid=OTHER_UID,
                       gid=OTHER_GID)
    v.mount()
    v.chdir(testdir)
    yield v
    v.umount()
