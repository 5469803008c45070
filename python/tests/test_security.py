"""Credentials beyond uid and gid: supplementary groups, tokens and TLS.

Groups run on the session's daemon. Tokens and TLS get a daemon of their
own whose TCP listener speaks TLS with a certificate of a throwaway CA
made with the openssl command, and whose tokens file names a user token
and a gateway token.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Iterator

import pytest

import proxyfs

from conftest import USER_GID, USER_UID, VOLUME, Daemon

USER_TOKEN = "py-user-token-0123456789"
GATEWAY_TOKEN = "py-gateway-token-0123456789"


def test_supplementary_groups(root: proxyfs.Volume, daemon: Daemon,
                              testdir: str) -> None:
    """A mount's groups count in the server's permission checks."""
    path = testdir + "/team"
    with root.fopen(path, "w") as f:
        f.write("for the team")
    root.chown(path, 0, 3000)
    root.chmod(path, 0o640)
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                        gid=USER_GID, groups=[3000]) as member:
        with member.fopen(path, "r") as f:
            assert f.read() == "for the team"
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                        gid=USER_GID) as outsider:
        with pytest.raises(PermissionError):
            outsider.fopen(path, "r")
    with pytest.raises(ValueError):
        proxyfs.Volume(VOLUME, groups=range(33))


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class TLSDaemon(Daemon):
    """A proxyfsd whose TCP listener speaks TLS and wants tokens."""

    def __init__(self, binary: str, workdir: str) -> None:
        super().__init__(binary, workdir)
        w = workdir
        self.ca = os.path.join(w, "ca.pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                 "-subj", "/CN=pytest CA", "-keyout",
                 os.path.join(w, "ca.key"), "-out", self.ca)
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-subj",
                 "/CN=127.0.0.1", "-keyout", os.path.join(w, "server.key"),
                 "-out", os.path.join(w, "server.csr"))
        ext = os.path.join(w, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", os.path.join(w, "server.csr"),
                 "-CA", self.ca, "-CAkey", os.path.join(w, "ca.key"),
                 "-CAcreateserial", "-days", "1", "-extfile", ext,
                 "-out", os.path.join(w, "server.pem"))
        tokens = os.path.join(w, "tokens")
        with open(tokens, "w") as f:
            f.write(f"{USER_TOKEN} pyuser {USER_UID}:{USER_GID}\n"
                    f"{GATEWAY_TOKEN} pygw *\n")
        os.chmod(tokens, 0o600)
        self.token_file = os.path.join(w, "token")
        with open(self.token_file, "w") as f:
            f.write(USER_TOKEN + "\n")
        with open(self.conf) as f:
            conf = f.read()
        conf = conf.replace(
            'unix = ""\n',
            f'unix = ""\ntls_cert = "{w}/server.pem"\n'
            f'tls_key = "{w}/server.key"\n', 1)
        conf = conf.replace("[metrics]",
                            f'[access]\ntokens_file = "{tokens}"\n[metrics]',
                            1)
        with open(self.conf, "w") as f:
            f.write(conf)


@pytest.fixture(scope="module")
def tls_daemon() -> Iterator[TLSDaemon]:
    binary = os.environ.get("PROXYFSD")
    if not binary:
        here = os.path.dirname(os.path.abspath(__file__))
        binary = os.path.join(here, "..", "..", "bin", "proxyfsd")
    work = tempfile.mkdtemp(prefix="proxyfs-pytest-tls.")
    d = TLSDaemon(binary, work)
    d.start()
    yield d
    d.stop()
    subprocess.run(["rm", "-rf", work], check=False)


def test_token_over_tls(tls_daemon: TLSDaemon) -> None:
    """A user token acts as its user only; the gateway token as anyone."""
    d = tls_daemon
    with proxyfs.Volume(VOLUME, server=d.addr, uid=0, gid=0,
                        token=GATEWAY_TOKEN, tls_ca_file=d.ca) as gw:
        gw.mkdir("/home", 0o755)
        gw.chown("/home", USER_UID, USER_GID)
    with proxyfs.Volume(VOLUME, server=d.addr, uid=USER_UID, gid=USER_GID,
                        token=USER_TOKEN, tls_ca_file=d.ca) as v:
        with v.fopen("/home/mine", "w") as f:
            f.write("hello")
        st = v.stat("/home/mine")
        assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    # The user's token cannot act as someone else.
    with pytest.raises(PermissionError):
        proxyfs.Volume(VOLUME, server=d.addr, uid=0, gid=0,
                       token=USER_TOKEN, tls_ca_file=d.ca).mount()
    # The token from a file.
    with proxyfs.Volume(VOLUME, server=d.addr, uid=USER_UID, gid=USER_GID,
                        token_file=d.token_file, tls_ca_file=d.ca) as v:
        assert v.listdir("/home") == ["mine"]


def test_tls_refusals(tls_daemon: TLSDaemon) -> None:
    """No token, a wrong token, or a daemon certificate that does not
    verify: PermissionError at mount."""
    d = tls_daemon
    for kw in ({"tls_ca_file": d.ca},
               {"tls_ca_file": d.ca, "token": "not-a-known-token-123"},
               {"tls": True, "token": USER_TOKEN}):
        with pytest.raises(PermissionError):
            proxyfs.Volume(VOLUME, server=d.addr, uid=USER_UID,
                           gid=USER_GID, timeout=5, **kw).mount()
    with pytest.raises(ValueError):
        proxyfs.Volume(VOLUME, token="a", token_file="b")
    with pytest.raises(ValueError):
        proxyfs.Volume(VOLUME, tls_cert_file="c")


def test_access_counts_groups(root: proxyfs.Volume, daemon: Daemon,
                              testdir: str) -> None:
    """access() judges a file of one of the mount's groups by its group
    bits, as the server does."""
    path = testdir + "/grp"
    with root.fopen(path, "w") as f:
        f.write("x")
    root.chown(path, 0, 3001)
    root.chmod(path, 0o640)
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                        gid=USER_GID, groups=[3001]) as member:
        assert member.access(path, os.R_OK)
        assert not member.access(path, os.W_OK)
    with proxyfs.Volume(VOLUME, server=daemon.addr, uid=USER_UID,
                        gid=USER_GID) as outsider:
        assert not outsider.access(path, os.R_OK)
