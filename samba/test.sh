#!/bin/bash
# samba/test.sh - end-to-end test of vfs_proxyfs (run as root, loopback only).
#
# Builds what it needs (proxyfsd, pfs, libproxyfs, proxyfs.so, lockprobe),
# loads a copy of the module of its own (MODULESDIR/vfs/proxyfs_test_PID.so,
# removed at exit), starts proxyfsd (TCP on a free loopback port, one
# auto-formatted local volume) and two private smbd gateways on free
# loopback ports, with the shares:
#   [pfs]    vfs objects = streams_xattr proxyfs   (the volume's /share)
#   [plain]  vfs objects = streams_xattr on a plain directory (reference)
# then runs smbclient (put/get with sha256 of 3 MiB and of 1 GiB, timed; ls,
# mkdir, rename, del, deltree, allinfo, 2000 small files, case-insensitive
# names) on both shares; on [pfs] a proxyfsd restart mid-session, byte-range
# locks against a libproxyfs client, and two gateways on one volume; and
# compares smbtorture suites on [pfs] and [plain] (a subtest failing on
# [pfs] only, and not in known-fail.txt, fails). Everything lives in a
# temporary directory removed at exit (KEEP=1 keeps it and leaves nothing
# running). Exits non-zero on any failure and prints the logs that explain
# it. The variables are in README.md ("Tests").
#
# Env: PROXYFSD=/path (use that daemon instead of building one),
#      SMB_PORT (start of the smbd port search, default 1445),
#      BIG_MB (default 1024), SMALL_N (default 2000),
#      TORTURE="smb2.connect smb2.rw smb2.read" (must pass on each share),
#      TORTURE_COMPARE (default: the suites below; FULL=1 adds the slow ones),
#      GETWD_CACHE (smbd's getwd cache, default no: see README),
#      PFS_LOG_LEVEL (proxyfsd log level; debug logs every request),
#      TORTURE_COMPARE="suite ..." (run each on both shares; fail only on
#      subtests that fail on [pfs] and not on [plain]),
#      ACL_XATTR=no (skip the acl_xattr suites on [pfsacl]; default yes),
#      STREAMS (yes|no), SHARES="pfs plain", PFS_INLINE_BYTES (the volume's
#      inline_bytes), PATHREF_HANDLES (yes|no, for [pfs]), SMB_LOG_LEVEL
#      (smbd's log level, default 1), VERBOSE=1, KEEP=1.
# The whole script is one { ... } group, so bash has read all of it before it
# runs any of it: editing test.sh during a run does not disturb that run.
{
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
BIG_MB=${BIG_MB:-1024}
SMALL_N=${SMALL_N:-2000}
KILL_MB=${KILL_MB:-512}
TORTURE=${TORTURE:-"smb2.connect smb2.rw smb2.read"}
# smbtorture suites run on [pfs] and on [plain] in the same run; a subtest
# that fails on [pfs] only (and is not in known-fail.txt) fails the test.
# The default set fits the test's time budget; FULL=1 (make test-full) adds
# the slower suites.
TORTURE_DEFAULT="smb2.connect smb2.rw smb2.read smb2.lock smb2.create smb2.mkdir smb2.dir
  smb2.rename smb2.timestamps smb2.winattr smb2.winattr2 smb2.check-sharemode smb2.sharemode
  smb2.deny smb2.delete-on-close-perms smb2.getinfo smb2.setinfo smb2.durable-open
  smb2.durable-v2-open smb2.ioctl smb2.zero-data-ioctl smb2.streams smb2.charset smb2.mangle
  smb2.compound smb2.fileid smb2.dosmode smb2.openattr smb2.sdread smb2.credits smb2.tcon
  smb2.maximum_allowed smb2.session smb2.session-id smb2.ea smb2.attributes"
TORTURE_SLOW="smb2.compound_find smb2.secleak smb2.maxfid smb2.notify smb2.oplock smb2.lease"
if [ "${FULL:-0}" = 1 ]; then TORTURE_DEFAULT="$TORTURE_DEFAULT $TORTURE_SLOW"; fi
TORTURE_COMPARE=${TORTURE_COMPARE-$TORTURE_DEFAULT}
SHARES=${SHARES:-"pfs plain"}
USERNAME=pfssmbtest
PASSWORD='Pfs-test-9'
# a second SMB user, for the identity checks (two users, one smbd)
USER2=pfssmbtest2
export DEBIAN_FRONTEND=noninteractive

T0=$(date +%s)
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }

[ "$(id -u)" = 0 ] || { echo "test.sh: must run as root (smbd, useradd, module install)"; exit 2; }

# The module is installed into smbd's one MODULESDIR (smbd refuses module
# paths), so runs from two work trees on one machine take turns.
. "$HERE/common.sh"
pfs_take_lock

T=$(mktemp -d /tmp/pfs-samba-test.XXXXXX)
chmod 755 "$T"
PFSD_PID=
SMB=$T/smb
PASSED=0
FAILED=0
FAILS=()

stop_all() {
  smb_stop "$SMB"; smb_stop "$T/smb2"
  # the pid file, not $PFSD_PID: a restart inside a check runs in a subshell
  local pp; pp=$(cat "$T/proxyfsd.pid" 2>/dev/null)
  if [ -n "$pp" ] && kill "$pp" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pp" 2>/dev/null || break; sleep 0.1; done
  fi
}
cleanup() {
  local rc=$?
  stop_all
  pfs_remove_module
  if [ -n "${KEEP:-}" ]; then echo "test.sh: kept $T"; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
  echo "---------------- proxyfsd log (last 40 lines) ----------------"
  tail -n 40 "$T/proxyfsd.log" 2>/dev/null
  for f in "$SMB"/log/log.*; do
    [ -s "$f" ] || continue
    echo "---------------- $f (proxyfs / error lines, last 60) ----------------"
    grep -n -i -E "proxyfs|error|fail|panic|denied|NT_STATUS" "$f" | tail -n 60
  done
}
die() { echo "test.sh: FATAL: $*"; show_logs; exit 1; }

# check NAME CMD...: run a check, record it; on failure print its output.
check() {
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  local out; out=$("$@" 2>&1); local rc=$?
  local dt; dt=$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo "?")
  if [ $rc -eq 0 ]; then
    PASSED=$((PASSED + 1)); printf 'PASS %s (%.1fs)\n' "$name" "$dt"
    [ -n "${VERBOSE:-}" ] && echo "$out" | sed 's/^/    /'
  else
    FAILED=$((FAILED + 1)); FAILS+=("$name"); echo "FAIL $name (rc=$rc)"
    echo "$out" | tail -n 30 | sed 's/^/    /'
  fi
}

# ---------------------------------------------------------------- build
say "packages"
pfs_packages samba-vfs-modules samba-testsuite python3-impacket

say "build: libproxyfs, proxyfs.so (headers: fetch-headers.sh), install the module"
pfs_build_module
[ -z "${PROXYFSD:-}" ] && say "build: proxyfsd, pfs"
pfs_build_daemon
cc -O2 -Wall -Wextra -Werror -I"$TOP" -o "$T/lockprobe" "$HERE/tests/lockprobe.c" \
  -L"$TOP/libproxyfs" -lproxyfs -Wl,-rpath,"$TOP/libproxyfs" >>"$T/build.log" 2>&1 \
  || { tail -20 "$T/build.log"; die "lockprobe build"; }

# ------------------------------------------------------------- proxyfsd
say "start proxyfsd"
pfs_write_config
start_pfsd || die "proxyfsd did not start"
echo "proxyfsd at $PFS_ADDR (pid $PFSD_PID)"

# ------------------------------------------------------------ user, share
id "$USERNAME" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$USERNAME" || die "useradd"
UID_=$(id -u "$USERNAME"); GID_=$(id -g "$USERNAME")
id "$USER2" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$USER2" || die "useradd $USER2"
UID2=$(id -u "$USER2")
# The volume's root belongs to root (0755), as a new local filesystem's does:
# root makes the share directories and gives them to the user.
"$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 mkdir /share /acl \
  && "$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 chown "$UID_:$GID_" /share /acl \
  && "$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 mkdir /multi \
  && "$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 chmod 1777 /multi \
  || die "pfs mkdir /share /acl /multi"

# ------------------------------------------------------------------ smbd
SMB_PORT=$(free_port "${SMB_PORT:-1445}")
# named streams (alternate data streams) as xattrs, on both shares
STREAMS_OBJ=; [ "${STREAMS:-yes}" = yes ] && STREAMS_OBJ=streams_xattr
say "start smbd on 127.0.0.1:$SMB_PORT"
mkdir -p "$SMB/plain"
chown "$UID_:$GID_" "$SMB/plain"
{ smb_global_conf "$SMB" "$SMB_PORT"; cat <<EOF
[pfs]
  path = /share
  read only = no
  vfs objects = $STREAMS_OBJ $VFS_NAME
  proxyfs:volume = pfs
  proxyfs:server = unix:$PFS_SOCK
  proxyfs:timeout = 60000
  proxyfs:pathref handles = ${PATHREF_HANDLES:-yes}
  posix locking = ${POSIX_LOCKING:-yes}
  smbd async dosmode = no
  kernel share modes = no
  kernel oplocks = no
[pfsacl]
  path = /acl
  read only = no
  vfs objects = acl_xattr $VFS_NAME
  proxyfs:volume = pfs
  proxyfs:server = unix:$PFS_SOCK
# two users on one share (sticky, as /tmp): each gets their own rights
[pfsmulti]
  path = /multi
  read only = no
  vfs objects = $VFS_NAME
  proxyfs:volume = pfs
  proxyfs:server = unix:$PFS_SOCK
# the shares smbtorture's vfs.acl_xattr connects to by name
[acl_xattr_ign_sysacl_posix]
  copy = pfsacl
  acl_xattr:ignore system acls = yes
  acl_xattr:default acl style = posix
[acl_xattr_ign_sysacl_windows]
  copy = pfsacl
  acl_xattr:ignore system acls = yes
  acl_xattr:default acl style = windows
[plain]
  path = $SMB/plain
  read only = no
  vfs objects = $STREAMS_OBJ
EOF
} > "$SMB/smb.conf"
smb_add_user "$SMB/smb.conf" "$USERNAME" "$PASSWORD" || die "smbpasswd"
smb_add_user "$SMB/smb.conf" "$USER2" "$PASSWORD" || die "smbpasswd $USER2"
smb_start "$SMB" "$SMB_PORT" || die "smbd does not listen on $SMB_PORT"

# A second gateway: another smbd on another port, with state directories of
# its own (its own brlock and share mode databases), on the same volume.
SMB2=$T/smb2
SMB2_PORT=$(free_port $((SMB_PORT + 1)))
mkdir -p "$SMB2"/{lock,state,cache,pid,log,ncalrpc}
cp -a "$SMB/private" "$SMB2/private"
sed -e "s|$SMB/|$SMB2/|g" -e "s|^  smb ports = .*|  smb ports = $SMB2_PORT|" "$SMB/smb.conf" > "$SMB2/smb.conf"
smb_start "$SMB2" "$SMB2_PORT" || die "smbd (second gateway) does not listen on $SMB2_PORT"
echo "smbd on $SMB_PORT, second gateway on $SMB2_PORT"

SMBC=(smbclient -p "$SMB_PORT" -U "$USERNAME%$PASSWORD" -m SMB3)

# smbc SHARE COMMANDS: run smbclient; fail on a non-zero exit or any NT_STATUS error
smbc() {
  local share=$1 cmds=$2 out rc
  out=$("${SMBC[@]}" "//127.0.0.1/$share" -c "$cmds" 2>&1); rc=$?
  echo "$out"
  if [ $rc -ne 0 ] || echo "$out" | grep -q "NT_STATUS_"; then return 1; fi
  return 0
}

# ------------------------------------------------------------ test data
say "test data"
L=$T/local
mkdir -p "$L/many"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom > "$L/small.bin"
head -c $((BIG_MB * 1024 * 1024)) /dev/urandom > "$L/big.bin"
for i in $(seq -w 1 "$SMALL_N"); do echo "file $i $RANDOM" > "$L/many/f$i.txt"; done
echo "case-insensitive $RANDOM" > "$L/Foo.TXT"
sum() { sha256sum "$1" | cut -d' ' -f1; }
BIG_SUM=$(sum "$L/big.bin")

t_putget() { # share file
  local s=$1 f=$2
  rm -f "$L/back-$f"
  smbc "$s" "put $L/$f $f; get $f $L/back-$f" >/dev/null || return 1
  [ "$(sum "$L/$f")" = "$(sum "$L/back-$f")" ] || { echo "sha256 differs for $f"; return 1; }
}
# figure LINE: a line for the summary printed at the end
figure() { echo "$*" >> "$T/figures.txt"; }
mibps() { echo "scale=1; $1 / ($3 - $2)" | bc; } # MiB t0 t1
t_big() { # share: put and get of the large file, each timed; sha256 of what comes back
  local s=$1 t0 t1 t2 got
  t0=$(date +%s.%N)
  smbc "$s" "put $L/big.bin big.bin" >/dev/null || return 1
  t1=$(date +%s.%N)
  got=$("${SMBC[@]}" "//127.0.0.1/$s" -c "get big.bin -" 2>"$T/big-get.err" | sha256sum | cut -d' ' -f1)
  t2=$(date +%s.%N)
  if grep -q NT_STATUS_ "$T/big-get.err"; then cat "$T/big-get.err"; return 1; fi
  [ "$got" = "$BIG_SUM" ] || { echo "sha256 of the file read back differs"; return 1; }
  figure "$(printf '%-6s %5d MiB  put %6.1f MiB/s (%5.1f s)  get %6.1f MiB/s (%5.1f s)' "[$s]" "$BIG_MB" \
    "$(mibps "$BIG_MB" "$t0" "$t1")" "$(echo "$t1 - $t0" | bc)" "$(mibps "$BIG_MB" "$t1" "$t2")" "$(echo "$t2 - $t1" | bc)")"
  smbc "$s" "del big.bin" >/dev/null || return 1
}
t_onvolume() { # the data is in the proxyfs volume: read it back with pfs
  rm -f "$L/vol-small.bin"
  "$PFS" -server "$PFS_ADDR" -volume pfs get /share/small.bin "$L/vol-small.bin" || return 1
  [ "$(sum "$L/small.bin")" = "$(sum "$L/vol-small.bin")" ] || { echo "sha256 differs"; return 1; }
  # created by the share's mount: owned by the session's user
  local st; st=$("$PFS" -server "$PFS_ADDR" -volume pfs stat /share/small.bin) || return 1
  echo "$st"
  echo "$st" | grep -q -E "Uid: $UID_\b" || { echo "owner is not uid $UID_"; return 1; }
  echo "$st" | grep -q -E "Gid: $GID_\b" || { echo "group is not gid $GID_"; return 1; }
}
t_restart() { # proxyfsd restarts under one smbd session: libproxyfs remounts
  rm -f "$L/back-r1" "$L/back-r2"
  { echo "put $L/small.bin r1.bin"; sleep 3; echo "get r1.bin $L/back-r1";
    echo "put $L/Foo.TXT r2.txt"; echo "get r2.txt $L/back-r2"; echo "del r1.bin"; echo "del r2.txt"; } |
    "${SMBC[@]}" //127.0.0.1/pfs > "$T/restart-smbclient.log" 2>&1 &
  local cpid=$!
  sleep 1
  stop_pfsd || { echo "proxyfsd did not stop"; return 1; }
  start_pfsd || { echo "proxyfsd did not start again"; return 1; }
  wait $cpid; local rc=$?
  cat "$T/restart-smbclient.log"
  [ $rc -eq 0 ] || return 1
  grep -q NT_STATUS_ "$T/restart-smbclient.log" && return 1
  [ "$(sum "$L/small.bin")" = "$(sum "$L/back-r1")" ] || { echo "r1.bin differs"; return 1; }
  cmp "$L/Foo.TXT" "$L/back-r2" || return 1
}
t_kill9() { # proxyfsd killed (SIGKILL) during a put: a pause; the put completes
  local mb=$KILL_MB cpid rc p0 got
  head -c $((mb * 1024 * 1024)) "$L/big.bin" > "$L/k.bin"
  p0=$(cat "$SMB/pid/smbd.pid")
  smbc pfs "put $L/k.bin k.bin" > "$T/kill9-smbclient.log" 2>&1 &
  cpid=$!
  # kill it once the file on the volume has 64 MiB: the put is under way
  local size=0
  for _ in $(seq 400); do
    size=$("$PFS" -server "$PFS_ADDR" -volume pfs stat /share/k.bin 2>/dev/null | awk '$1 == "Size:" {print $2}')
    [ "${size:-0}" -ge $((64 * 1024 * 1024)) ] && break
    kill -0 $cpid 2>/dev/null || break
    sleep 0.02
  done
  kill -0 $cpid 2>/dev/null || { echo "the put ended before the kill: make KILL_MB larger"; cat "$T/kill9-smbclient.log"; return 1; }
  kill -9 "$(cat "$T/proxyfsd.pid")"
  echo "proxyfsd killed (SIGKILL) when the $mb MiB put had written ${size:-0} bytes"
  sleep 1
  start_pfsd || { echo "proxyfsd did not start again"; return 1; }
  wait $cpid; rc=$?
  cat "$T/kill9-smbclient.log"
  [ $rc -eq 0 ] || { echo "smbclient put failed (rc=$rc)"; return 1; }
  kill -0 "$p0" || { echo "smbd died"; return 1; }
  got=$("${SMBC[@]}" //127.0.0.1/pfs -c "get k.bin -" 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "$got" = "$(sum "$L/k.bin")" ] || { echo "k.bin read back differs"; return 1; }
  echo "smbd survived; k.bin read back with the right sha256"
  smbc pfs "del k.bin" >/dev/null; rm -f "$L/k.bin"
}
t_ls() {
  local out; out=$(smbc "$1" "ls") || { echo "$out"; return 1; }
  echo "$out" | grep -q "small.bin" || { echo "$out"; echo "small.bin not listed"; return 1; }
  echo "$out" | grep -q "blocks of size" || { echo "$out"; echo "no disk free line"; return 1; }
}
t_dirs() {
  local s=$1 out
  smbc "$s" "mkdir d1; mkdir d1/sub; put $L/Foo.TXT d1/sub/x.txt; rename d1/sub/x.txt d1/y.txt; rename d1 d2" || return 1
  out=$(smbc "$s" "ls d2/*") || { echo "$out"; return 1; }
  echo "$out" | grep -q " y.txt " || { echo "$out"; echo "rename: y.txt missing"; return 1; }
  echo "$out" | grep -q " sub " || { echo "$out"; echo "sub missing"; return 1; }
  smbc "$s" "del d2/y.txt; rmdir d2/sub" || return 1
  out=$(smbc "$s" "ls d2/*") || return 1
  if echo "$out" | grep -q -E " (y.txt|sub) "; then echo "$out"; echo "del/rmdir: still there"; return 1; fi
  smbc "$s" "mkdir d3; mkdir d3/a; mkdir d3/a/b; put $L/Foo.TXT d3/a/b/f; put $L/Foo.TXT d3/g; deltree d3; deltree d2" || return 1
  out=$("${SMBC[@]}" "//127.0.0.1/$s" -c "ls d3" 2>&1)
  echo "$out" | grep -q "NT_STATUS_NO_SUCH_FILE\|NT_STATUS_OBJECT_NAME_NOT_FOUND" || { echo "$out"; echo "deltree: d3 still there"; return 1; }
}
t_allinfo() {
  local out; out=$(smbc "$1" "allinfo small.bin") || { echo "$out"; return 1; }
  echo "$out"
  for k in create_time: write_time: attributes: "stream: \[::\$DATA\], $((3 * 1024 * 1024 + 12345)) bytes"; do
    echo "$out" | grep -q "$k" || { echo "allinfo: no '$k'"; return 1; }
  done
}
t_many() {
  local s=$1 out n
  local t0 t1 t2; t0=$(date +%s.%N)
  smbc "$s" "mkdir many; cd many; lcd $L/many; prompt off; mput *" >/dev/null || return 1
  t1=$(date +%s.%N)
  out=$(smbc "$s" "ls many/*") || { echo "$out" | tail; return 1; }
  n=$(echo "$out" | grep -c -E '^ +f[0-9]+\.txt +')
  [ "$n" = "$SMALL_N" ] || { echo "listed $n of $SMALL_N files"; return 1; }
  rm -rf "$L/back-many"; mkdir -p "$L/back-many"
  smbc "$s" "cd many; lcd $L/back-many; prompt off; mget *" >/dev/null || return 1
  t2=$(date +%s.%N)
  figure "$(printf '%-6s %5d small files  mput %5.1f s  mget %5.1f s' "[$s]" "$SMALL_N" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)")"
  diff -r "$L/many" "$L/back-many" || return 1
  smbc "$s" "deltree many" >/dev/null || return 1
}
t_case() {
  local s=$1
  rm -f "$L/back-case"
  smbc "$s" "put $L/Foo.TXT Foo.TXT; get foo.txt $L/back-case" >/dev/null || return 1
  cmp "$L/Foo.TXT" "$L/back-case" || return 1
  # a second create with another case must open the same file, not add one
  smbc "$s" "put $L/small.bin FOO.txt" >/dev/null || return 1
  local out; out=$(smbc "$s" "ls f*") || return 1
  local n; n=$(echo "$out" | grep -c -i -E '^ +foo\.txt +')
  [ "$n" = 1 ] || { echo "$out"; echo "expected one foo.txt, got $n"; return 1; }
  smbc "$s" "del foo.txt" >/dev/null || return 1
}
t_torture() { # share test
  smbtorture "//127.0.0.1/$1" -p "$SMB_PORT" -U "$USERNAME%$PASSWORD" --target=samba3 \
    --maximum-runtime=300 "$2" > "$T/torture-$1-$2.log" 2>&1
  local rc=$?
  grep -E "^(success|failure|error|skip):" "$T/torture-$1-$2.log" | sort | uniq -c | sed 's/^/    /'
  [ $rc -eq 0 ] || { tail -n 40 "$T/torture-$1-$2.log"; return 1; }
}

t_identity() { # two SMB users through one smbd: each call runs as its user
  local st out
  "${SMBC[@]}" //127.0.0.1/pfsmulti -c "put $L/Foo.TXT alice.txt" >/dev/null 2>&1 || { echo "user 1: put"; return 1; }
  st=$("$PFS" -server "$PFS_ADDR" -volume pfs stat /multi/alice.txt) || return 1
  echo "$st" | grep -q -E "Uid: $UID_\b" || { echo "$st"; echo "alice.txt is not owned by uid $UID_"; return 1; }
  "$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 chmod 600 /multi/alice.txt || return 1
  out=$(smbclient -p "$SMB_PORT" -U "$USER2%$PASSWORD" -m SMB3 //127.0.0.1/pfsmulti -c "get alice.txt $L/bob-got" 2>&1)
  echo "$out" | grep -q NT_STATUS_ACCESS_DENIED || { echo "$out"; echo "user 2 read user 1's 0600 file"; return 1; }
  out=$(smbclient -p "$SMB_PORT" -U "$USER2%$PASSWORD" -m SMB3 //127.0.0.1/pfsmulti -c "put $L/Foo.TXT bob.txt" 2>&1) \
    || { echo "$out"; return 1; }
  st=$("$PFS" -server "$PFS_ADDR" -volume pfs stat /multi/bob.txt) || return 1
  echo "$st" | grep -q -E "Uid: $UID2\b" || { echo "$st"; echo "bob.txt is not owned by uid $UID2"; return 1; }
  rm -f "$L/back-alice"
  "${SMBC[@]}" //127.0.0.1/pfsmulti -c "get alice.txt $L/back-alice" >/dev/null 2>&1 || { echo "user 1 cannot read her file"; return 1; }
  cmp "$L/Foo.TXT" "$L/back-alice"
}

# wait_line FILE TEXT: wait up to 10 s for a line TEXT in FILE
wait_line() {
  for _ in $(seq 100); do grep -q -x "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no '$2' in $1:"; cat "$1"; return 1
}
t_locks() { # SMB byte-range locks are proxyfsd's: libproxyfs clients see them
  local lp=("$T/lockprobe" "$PFS_ADDR" pfs /share/lk.bin)
  local py=(/usr/bin/python3 "$HERE/tests/smb2lock.py" 127.0.0.1 "$SMB_PORT" "$USERNAME" "$PASSWORD" pfs lk.bin)
  local out hp
  smbc pfs "put $L/small.bin lk.bin" >/dev/null || return 1
  # 1. a lock taken over SMB blocks a conflicting lock of another client
  rm -f "$T/hold.in" "$T/hold.out"; mkfifo "$T/hold.in"
  "${py[@]}" hold 100 1000 < "$T/hold.in" > "$T/hold.out" 2>&1 & hp=$!
  exec 9>"$T/hold.in"
  wait_line "$T/hold.out" locked || { exec 9>&-; return 1; }
  out=$("${lp[@]}" test 500 10); echo "F_GETLK while SMB holds [100,1100): $out"
  echo "$out" | grep -q -E "^locked 100 1000 smb:[^:]+:[0-9]+:[0-9]+$" || { exec 9>&-; return 1; }
  out=$("${lp[@]}" try 500 10); echo "F_SETLK [500,510): $out"
  [ "$out" = conflict ] || { exec 9>&-; return 1; }
  out=$("${lp[@]}" try 2000 10); echo "F_SETLK [2000,2010): $out"
  [ "$out" = granted ] || { exec 9>&-; return 1; }
  exec 9>&-; wait $hp || { cat "$T/hold.out"; return 1; }
  wait_line "$T/hold.out" unlocked || return 1
  out=$("${lp[@]}" try 500 10); echo "F_SETLK [500,510) after the SMB unlock: $out"
  [ "$out" = granted ] || return 1
  # 2. a lock of another client blocks SMB locks, and reads (strict locking)
  rm -f "$T/hold.in" "$T/hold.out"; mkfifo "$T/hold.in"
  "${lp[@]}" hold 100 1000 < "$T/hold.in" > "$T/hold.out" 2>&1 & hp=$!
  exec 9>"$T/hold.in"
  wait_line "$T/hold.out" locked || { exec 9>&-; return 1; }
  out=$("${py[@]}" try 500 10); echo "SMB lock [500,510) while libproxyfs holds [100,1100): $out"
  echo "$out" | grep -q -x -E "STATUS_LOCK_NOT_GRANTED|STATUS_FILE_LOCK_CONFLICT" || { exec 9>&-; return 1; }
  out=$("${py[@]}" read 500 10); echo "SMB read [500,510): $out"
  [ "$out" = STATUS_FILE_LOCK_CONFLICT ] || { exec 9>&-; return 1; }
  out=$("${py[@]}" read 2000 10); echo "SMB read [2000,2010): $out"
  [ "$out" = "read 10" ] || { exec 9>&-; return 1; }
  exec 9>&-; wait $hp || { cat "$T/hold.out"; return 1; }
  out=$("${py[@]}" try 500 10); echo "SMB lock [500,510) after the unlock: $out"
  [ "$out" = granted ] || return 1
  smbc pfs "del lk.bin" >/dev/null
}

t_gateways() { # two smbd gateways on one volume: data, locks, an open file unlinked
  local py1=(/usr/bin/python3 "$HERE/tests/smb2lock.py" 127.0.0.1 "$SMB_PORT" "$USERNAME" "$PASSWORD" pfs gw.bin)
  local py2=(/usr/bin/python3 "$HERE/tests/smb2lock.py" 127.0.0.1 "$SMB2_PORT" "$USERNAME" "$PASSWORD" pfs gw.bin)
  local smbc2=(smbclient -p "$SMB2_PORT" -U "$USERNAME%$PASSWORD" -m SMB3 //127.0.0.1/pfs)
  local out hp
  # written through one, read back through the other
  smbc pfs "put $L/small.bin gw.bin" >/dev/null || return 1
  out=$("${smbc2[@]}" -c "get gw.bin -" 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "$out" = "$(sum "$L/small.bin")" ] || { echo "gw.bin read through the second gateway differs"; return 1; }
  echo "written through :$SMB_PORT, read back through :$SMB2_PORT: same sha256"
  # a lock through one blocks a conflicting lock through the other
  rm -f "$T/gw.in" "$T/gw.out"; mkfifo "$T/gw.in"
  "${py1[@]}" hold 0 4096 < "$T/gw.in" > "$T/gw.out" 2>&1 & hp=$!
  exec 9>"$T/gw.in"
  wait_line "$T/gw.out" locked || { exec 9>&-; return 1; }
  out=$("${py2[@]}" try 1000 10); echo "lock through :$SMB2_PORT while :$SMB_PORT holds [0,4096): $out"
  echo "$out" | grep -q -x -E "STATUS_LOCK_NOT_GRANTED|STATUS_FILE_LOCK_CONFLICT" || { exec 9>&-; return 1; }
  out=$("${py2[@]}" try 5000 10); echo "lock [5000,5010) through :$SMB2_PORT: $out"
  [ "$out" = granted ] || { exec 9>&-; return 1; }
  exec 9>&-; wait $hp || { cat "$T/gw.out"; return 1; }
  out=$("${py2[@]}" try 1000 10); echo "lock through :$SMB2_PORT after the unlock: $out"
  [ "$out" = granted ] || return 1
  # a file held open through one survives an unlink through the other
  rm -f "$T/gw.in" "$T/gw.out"; mkfifo "$T/gw.in"
  "${py1[@]}" openread 0 $((3 * 1024 * 1024 + 12345)) < "$T/gw.in" > "$T/gw.out" 2>&1 & hp=$!
  exec 9>"$T/gw.in"
  wait_line "$T/gw.out" opened || { exec 9>&-; return 1; }
  "${smbc2[@]}" -c "del gw.bin" 2>&1 | grep NT_STATUS_ && { exec 9>&-; return 1; }
  out=$("${smbc2[@]}" -c "ls gw.bin" 2>&1)
  echo "$out" | grep -q NT_STATUS_NO_SUCH_FILE || { echo "$out"; echo "gw.bin still listed after the unlink"; exec 9>&-; return 1; }
  exec 9>&-; wait $hp || { cat "$T/gw.out"; return 1; }
  out=$(tail -n 1 "$T/gw.out"); echo "read through :$SMB_PORT after the unlink through :$SMB2_PORT: $out"
  [ "$out" = "sha256 $(sum "$L/small.bin")" ] || return 1
}

t_acl_xattr() { # NT ACLs kept in security.NTACL through the module (acl_xattr above it)
  local t
  for t in vfs.acl_xattr smb2.create.aclfile smb2.create.acldir smb2.create.nulldacl; do
    echo "--- $t"
    t_torture pfsacl "$t" || return 1
  done
}

# t_torture_cmp SUITE: run SUITE on [plain] and on [pfs]; fail only on
# subtests that fail on [pfs] but not on [plain] (the same smbd, another
# backend: what the module gets wrong, not what this smbd setup lacks)
torture_failures() {
  grep -E '^(failure|error):' "$1" | sed -E 's/^(failure|error): //; s/ \[$//' | sort -u
}
# known-fail.txt: "subtest  reason" lines, subtests allowed to fail on [pfs] only
known_fail() { grep -v -E '^[[:space:]]*(#|$)' "$HERE/known-fail.txt" 2>/dev/null | awk '{print $1}' | sort -u; }
counts() { # log: "S/F/K" = successes, failures+errors, skips
  local f=$1
  printf '%d/%d/%d' "$(grep -c -E '^success:' "$f")" "$(grep -c -E '^(failure|error):' "$f")" "$(grep -c -E '^skip:' "$f")"
}
t_torture_cmp() {
  local t=$1 a b only t0 t1 t2 dp dq known
  t0=$(date +%s.%N)
  t_torture plain "$t" >/dev/null 2>&1
  t1=$(date +%s.%N)
  t_torture pfs "$t" >/dev/null 2>&1
  t2=$(date +%s.%N)
  dq=$(echo "$t1 - $t0" | bc); dp=$(echo "$t2 - $t1" | bc)
  a=$(torture_failures "$T/torture-pfs-$t.log")
  b=$(torture_failures "$T/torture-plain-$t.log")
  only=$(comm -23 <(echo "$a") <(echo "$b") | grep -v '^$')
  known=$(comm -12 <(echo "$only") <(known_fail) | grep -v '^$')
  only=$(comm -23 <(echo "$only") <(known_fail) | grep -v '^$')
  printf '%-34s %-12s %-12s %7.1f %7.1f  %s\n' "$t" "$(counts "$T/torture-pfs-$t.log")" \
    "$(counts "$T/torture-plain-$t.log")" "$dp" "$dq" \
    "$([ -n "$only" ] && echo "FAIL on [pfs] only: $(echo $only)")$([ -n "$known" ] && echo " known-fail: $(echo $known)")" >> "$T/compare.txt"
  echo "    time: pfs ${dp}s, plain ${dq}s"
  [ -n "$b" ] && echo "    failing on both: $(echo "$b" | comm -12 - <(echo "$a") | tr '\n' ' ')"
  [ -n "$known" ] && echo "    failing on [pfs] only, in known-fail.txt: $(echo $known)"
  [ -z "$only" ] || { echo "    failing on [pfs] only: $(echo "$only" | tr '\n' ' ')"; return 1; }
}

for s in $SHARES; do
  say "share [$s]: smbclient"
  check "$s put/get 3 MiB sha256"          t_putget "$s" small.bin
  check "$s put/get $BIG_MB MiB sha256, throughput" t_big "$s"
  if [ "$s" = pfs ]; then
    check "$s data is in the volume (pfs get), owned by the user" t_onvolume
    check "pfsmulti: two users, each with their own rights (owner, 0600 denied)" t_identity
    # acl_xattr writes security.NTACL as root (become_root): the module
    # sends smbd's current identity with every call, so proxyfsd sees root.
    if [ "${ACL_XATTR:-yes}" = yes ]; then
      check "pfsacl (acl_xattr proxyfs): smbtorture vfs.acl_xattr, smb2.create.acl*" t_acl_xattr
    else
      echo "SKIP pfsacl (acl_xattr proxyfs): ACL_XATTR=no"
    fi
  fi
  [ "$s" = pfs ] && check "$s proxyfsd restart during a session" t_restart
  [ "$s" = pfs ] && [ "$KILL_MB" -le "$BIG_MB" ] && \
    check "$s proxyfsd killed (SIGKILL) during a $KILL_MB MiB put" t_kill9
  [ "$s" = pfs ] && check "$s byte-range locks are proxyfsd's (SMB lock vs libproxyfs lock, both ways)" t_locks
  [ "$s" = pfs ] && check "$s two smbd gateways on one volume (data, locks, unlink of an open file)" t_gateways
  check "$s ls"                            t_ls "$s"
  check "$s mkdir/rename/del/rmdir/deltree" t_dirs "$s"
  check "$s allinfo"                       t_allinfo "$s"
  check "$s $SMALL_N small files"               t_many "$s"
  check "$s case-insensitive names"        t_case "$s"
  smbc "$s" "del small.bin" >/dev/null
  say "share [$s]: smbtorture"
  for t in $TORTURE; do
    check "$s smbtorture $t" t_torture "$s" "$t"
  done
done

if [ -n "$TORTURE_COMPARE" ]; then
  say "smbtorture, [pfs] against [plain]"
  printf '%-34s %-12s %-12s %7s %7s\n' suite "pfs S/F/K" "plain S/F/K" "pfs s" "plain s" > "$T/compare.txt"
  for t in $TORTURE_COMPARE; do
    check "smbtorture $t: no failure on [pfs] that [plain] does not have" t_torture_cmp "$t"
  done
fi

say "done"
# smbd acts for every user over one connection: proxyfsd never refused it an
# identity (per-call identities from a root process on the Unix socket)
if grep -h "refused" "$T/proxyfsd.log" 2>/dev/null | head -5 | grep .; then
  FAILED=$((FAILED + 1)); FAILS+=("proxyfsd refused smbd an identity (see above)")
else
  PASSED=$((PASSED + 1)); echo "PASS proxyfsd refused smbd no identity"
fi
# the module warns when a tree disconnect finds handles smbd did not close
if grep -h "handles still open at disconnect" "$SMB"/log/log.* 2>/dev/null | head -5 | grep .; then
  FAILED=$((FAILED + 1)); FAILS+=("proxyfs handles leaked (see above)")
else
  PASSED=$((PASSED + 1)); echo "PASS no proxyfs handle left open at any disconnect"
fi
if [ -s "$T/figures.txt" ]; then
  echo "---------------- figures ----------------"; cat "$T/figures.txt"
fi
if [ -s "$T/compare.txt" ]; then
  echo "---------------- smbtorture, [pfs] against [plain] (S/F/K: subtests succeeded/failed/skipped; seconds) ----------------"
  cat "$T/compare.txt"
fi
if [ "$FAILED" -ne 0 ]; then
  echo "failed: ${FAILS[*]}"
  show_logs
fi
echo "vfs_proxyfs: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
exit
}
