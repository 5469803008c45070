#!/usr/bin/python3
"""smb2lock.py - take an SMB2 byte-range lock over SMB (test helper of test.sh).

    smb2lock.py HOST PORT USER PASSWORD SHARE FILE MODE START LENGTH

MODE:
  hold   lock [START, START+LENGTH) exclusively, print "locked", hold it until
         standard input closes, then unlock, close and print "unlocked"
  try    one exclusive lock that fails at once on a conflict; prints
         "granted" (and unlocks) or the NT status, e.g.
         "STATUS_LOCK_NOT_GRANTED"; exit 0 either way, 1 on other errors
  read   read LENGTH bytes at START; prints "read N" or the NT status
  openread  open the file, print "opened", wait until standard input
         closes, then read LENGTH bytes at START and print "sha256 HEX"

Uses impacket (Debian's python3-impacket). Its SMB3.lock() joins the lock
elements with str(), which breaks on Python 3, so the request is built here.
"""
import hashlib
import sys

from impacket import smb3, smb3structs as s3
from impacket.smbconnection import SMBConnection, SessionError
from impacket.nt_errors import STATUS_SUCCESS, ERROR_MESSAGES


def status_name(e):
    code = e.getErrorCode() if hasattr(e, "getErrorCode") else e.get_error_code()
    return ERROR_MESSAGES.get(code, ("0x%08x" % code,))[0]


def lock(smb, tid, fid, start, length, flags):
    el = s3.SMB2_LOCK_ELEMENT()
    el["Offset"] = start
    el["Length"] = length
    el["Flags"] = flags
    req = s3.SMB2Lock()
    req["FileID"] = fid
    req["LockCount"] = 1
    req["LockSequence"] = 0
    req["Locks"] = el.getData()
    pkt = smb.SMB_PACKET()
    pkt["Command"] = s3.SMB2_LOCK
    pkt["TreeID"] = tid
    pkt["Data"] = req
    ans = smb.recvSMB(smb.sendSMB(pkt))
    if not ans.isValidAnswer(STATUS_SUCCESS):  # raises SessionError otherwise
        raise RuntimeError("lock: unexpected answer")


def main():
    if len(sys.argv) != 10:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, user, pw, share, path, mode = sys.argv[1:8]
    start, length = int(sys.argv[8]), int(sys.argv[9])
    conn = SMBConnection(host, host, sess_port=int(port),
                         preferredDialect=s3.SMB2_DIALECT_30)
    conn.login(user, pw)
    tid = conn.connectTree(share)
    fid = conn.openFile(tid, path,
                        desiredAccess=s3.FILE_READ_DATA | s3.FILE_WRITE_DATA,
                        shareMode=s3.FILE_SHARE_READ | s3.FILE_SHARE_WRITE)
    smb = conn.getSMBServer()
    excl = s3.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | s3.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    try:
        if mode == "hold":
            lock(smb, tid, fid, start, length, excl)
            print("locked", flush=True)
            sys.stdin.read()
            lock(smb, tid, fid, start, length, s3.SMB2_LOCKFLAG_UNLOCK)
            print("unlocked", flush=True)
        elif mode == "try":
            try:
                lock(smb, tid, fid, start, length, excl)
            except (SessionError, smb3.SessionError) as e:
                print(status_name(e), flush=True)
            else:
                lock(smb, tid, fid, start, length, s3.SMB2_LOCKFLAG_UNLOCK)
                print("granted", flush=True)
        elif mode == "read":
            try:
                data = conn.readFile(tid, fid, start, length)
            except (SessionError, smb3.SessionError) as e:
                print(status_name(e), flush=True)
            else:
                print("read %d" % len(data), flush=True)
        elif mode == "openread":
            print("opened", flush=True)
            sys.stdin.read()
            data = b""
            while len(data) < length:
                chunk = conn.readFile(tid, fid, start + len(data),
                                      min(length - len(data), 1 << 20))
                if not chunk:
                    break
                data += chunk
            print("sha256 " + hashlib.sha256(data).hexdigest(), flush=True)
        else:
            print("bad mode " + mode, file=sys.stderr)
            return 2
    finally:
        conn.closeFile(tid, fid)
        conn.logoff()
    return 0


if __name__ == "__main__":
    sys.exit(main())
