#!/bin/bash
# samba/bench.sh - vfs_proxyfs against vfs_default through one private smbd
# (make bench-smb; run as root, loopback only).
#
# Starts proxyfsd (local engine, volume "pfs", metrics on a free loopback
# port) and one smbd with two shares that differ only in their backend:
#   [pfs]    vfs objects = proxyfs (the module of this tree, a private copy)
#   [plain]  vfs_default on a local directory of the same filesystem as the
#            daemon's data
# and times, with smbclient (SMB3), in ROUNDS rounds that alternate which
# share goes first (best of the rounds per share and workload):
#   put      BIG_MB MiB (default 1024) from a local file
#   get      the same file back, to /dev/null (sha256 checked once, untimed)
#   mput     SMALL_N (default 2000) small files (100-300 bytes) into a new
#            directory (one smbclient session: mkdir; cd; mput *)
#   ls       LIST_N (default 10 000) files in one directory, listed LS_REPEAT
#            (default 3) times in one session (smbclient "ls dir/*": SMB2
#            QUERY_DIRECTORY, FileIdBothDirectoryInformation, every entry
#            with its times, size and DOS attributes); the directories are
#            made before the timing, through the local filesystem and
#            through libproxyfs (the Python bindings)
# It prints one line per workload: the best time on each share, the ratio
# (proxyfs throughput / vfs_default throughput; 1.0 = as fast), the target
# and PASS or MISS, then proxyfsd's requests per file for mput and per
# entry for ls (the daemon's proxyfs_requests_total, before and after the
# workload on [pfs]), and the CPU seconds smbd and proxyfsd used in each
# timed run. Missed targets are printed, not failures: it exits
# non-zero only when something is broken.
#
# Env: ROUNDS (3), BIG_MB, SMALL_N, LIST_N, LS_REPEAT, ONLY="put get mput ls",
#      PATHREF_HANDLES (yes|no, [pfs]), SMB_LOG_LEVEL (1), PROXYFSD=/path,
#      PPROF_ON=ls profiles the listing instead of the mput;
#      PPROF=FILE (a CPU profile of proxyfsd for PPROF_SECONDS (5) from the
#      start of the last round's [pfs] mput; go tool pprof -top bin/proxyfsd FILE),
#      KEEP=1 (keep the temporary directory, stop everything).
{
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
ROUNDS=${ROUNDS:-3}
BIG_MB=${BIG_MB:-1024}
SMALL_N=${SMALL_N:-2000}
LIST_N=${LIST_N:-10000}
LS_REPEAT=${LS_REPEAT:-3}
ONLY=${ONLY:-"put get mput ls"}
USERNAME=pfssmbtest
PASSWORD='Pfs-test-9'
export DEBIAN_FRONTEND=noninteractive

die() { echo "bench.sh: FATAL: $*"; tail -n 20 "$T/proxyfsd.log" 2>/dev/null; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench.sh: must run as root (smbd, useradd, module install)"; exit 2; }
. "$HERE/common.sh"
pfs_take_lock

T=$(mktemp -d /tmp/pfs-samba-bench.XXXXXX)
chmod 755 "$T"
SMB=$T/smb
cleanup() {
  local rc=$?
  smb_stop "$SMB"; stop_pfsd
  pfs_remove_module
  if [ -n "${KEEP:-}" ]; then echo "bench.sh: kept $T"; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pfs_packages
pfs_build_module
pfs_build_daemon

METRICS_LISTEN=127.0.0.1:$(free_port 19550)
[ -n "${PPROF:-}" ] && PFS_PPROF=true
pfs_write_config
start_pfsd || die "proxyfsd did not start"

id "$USERNAME" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$USERNAME" || die "useradd"
UID_=$(id -u "$USERNAME"); GID_=$(id -g "$USERNAME")
"$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 mkdir /share \
  && "$PFS" -server "$PFS_ADDR" -volume pfs -uid 0 -gid 0 chown "$UID_:$GID_" /share \
  || die "pfs mkdir /share"

SMB_PORT=$(free_port "${SMB_PORT:-1445}")
mkdir -p "$SMB/plain"
chown "$UID_:$GID_" "$SMB/plain"
# The share settings [pfs] needs (no kernel share modes or oplocks on a
# volume that is not a kernel filesystem) are global: both shares get them.
{ smb_global_conf "$SMB" "$SMB_PORT"; cat <<EOF
  posix locking = yes
  smbd async dosmode = no
  kernel share modes = no
  kernel oplocks = no
[pfs]
  path = /share
  read only = no
  vfs objects = $VFS_NAME
  proxyfs:volume = pfs
  proxyfs:server = unix:$PFS_SOCK
  proxyfs:timeout = 60000
  proxyfs:pathref handles = ${PATHREF_HANDLES:-yes}
[plain]
  path = $SMB/plain
  read only = no
EOF
} > "$SMB/smb.conf"
smb_add_user "$SMB/smb.conf" "$USERNAME" "$PASSWORD" || die "smbpasswd"
smb_start "$SMB" "$SMB_PORT" || die "smbd does not listen on $SMB_PORT"
SMBC=(smbclient -p "$SMB_PORT" -U "$USERNAME%$PASSWORD" -m SMB3)
smbc() { # SHARE COMMANDS: fail on a non-zero exit or any NT_STATUS error
  local out rc
  out=$("${SMBC[@]}" "//127.0.0.1/$1" -c "$2" 2>&1); rc=$?
  if [ $rc -ne 0 ] || echo "$out" | grep -q "NT_STATUS_"; then echo "$out" | tail -n 5; return 1; fi
  echo "$out"
}

# ------------------------------------------------------------------ data
L=$T/local
mkdir -p "$L/many"
head -c $((BIG_MB * 1024 * 1024)) /dev/urandom > "$L/big.bin"
BIG_SUM=$(sha256sum "$L/big.bin" | cut -d' ' -f1)
python3 - "$L/many" "$SMALL_N" <<'EOF'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(os.urandom(random.randint(100, 300)))
EOF
if [[ " $ONLY " == *" ls "* ]]; then
  # the listing directories, LIST_N files of 0-200 bytes each, owned by the user
  PYTHONPATH=$TOP/python PROXYFS_LIBRARY=$TOP/libproxyfs/libproxyfs.so.2 python3 -P - \
    "$SMB/plain/list" "$PFS_SOCK" "$LIST_N" "$UID_" "$GID_" <<'EOF' || die "making the listing directories"
import os, sys, proxyfs
plain, sock, n, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
os.mkdir(plain); os.chown(plain, uid, gid)
for i in range(n):
    p = os.path.join(plain, "e%05d.dat" % i)
    with open(p, "wb") as f:
        f.write(b"x" * (i % 200))
    os.chown(p, uid, gid)
v = proxyfs.Volume("pfs", server="unix:" + sock, uid=uid, gid=gid)
v.mount()
v.mkdir("/share/list")
for i in range(n):
    with v.open("/share/list/e%05d.dat" % i, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644) as f:
        f.write(b"x" * (i % 200))
v.umount()
EOF
fi

# ------------------------------------------------------------- workloads
now() { date +%s.%N; }
METRICS_URL=http://$METRICS_LISTEN/metrics
requests() { # method count lines of proxyfsd's request counter, summed over channels
  curl -s "$METRICS_URL" | awk '/^proxyfs_requests_total\{/ {
    m = $0; sub(/.*method="/, "", m); sub(/".*/, "", m); n[m] += $2 } END { for (k in n) print k, n[k] }' | sort
}
# delta BEFORE AFTER PER: "method n/PER ..." of what changed, largest first
delta() {
  join -a 2 -e 0 -o 0,1.2,2.2 <(echo "$1") <(echo "$2") |
    awk -v per="$3" '{ d = $3 - $2; if (d > 0) { t += d; if (d / per >= 0.005) printf "%s %.2f\n", $1, d / per } } END { printf "TOTAL %.2f\n", t / per }' |
    sort -k2,2 -g -r | tr '\n' ' '
}

# cpu: seconds of CPU used so far by proxyfsd (PROC=pfsd) or by the smbd
# processes, their reaped children (the session processes) included
cpu() {
  local pids
  if [ "$1" = pfsd ]; then pids=$(cat "$T/proxyfsd.pid"); else pids=$(cat "$SMB/pid/smbd.pid"); pids="$pids $(pgrep -P "$pids" | tr '\n' ' ')"; fi
  local t=0 p
  for p in $pids; do
    t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "scale=2; $t / $(getconf CLK_TCK)" | bc
}
declare -A BEST
record() { # KEY SECONDS: keep the smallest
  local k=$1 s=$2
  if [ -z "${BEST[$k]:-}" ] || [ "$(echo "$s < ${BEST[$k]}" | bc)" = 1 ]; then BEST[$k]=$s; fi
}
run_one() { # SHARE WORKLOAD ROUND: time it, record it; prints the seconds
  local s=$1 w=$2 r=$3 t0 t1 m0 cmds i c0 c1 d0 d1
  [ "$s" = pfs ] && m0=$(requests)
  c0=$(cpu smbd); d0=$(cpu pfsd)
  case $w in
    put)  t0=$(now); smbc "$s" "put $L/big.bin big.bin" >/dev/null || die "[$s] put"; t1=$(now) ;;
    get)  t0=$(now); smbc "$s" "get big.bin /dev/null" >/dev/null || die "[$s] get"; t1=$(now) ;;
    mput) local prof=
          if [ -n "${PPROF:-}" ] && [ "${PPROF_ON:-mput}" = mput ] && [ "$s" = pfs ] && [ "$r" = "$ROUNDS" ]; then
            curl -s -o "$PPROF" "http://$METRICS_LISTEN/debug/pprof/profile?seconds=${PPROF_SECONDS:-5}" & prof=$!
            sleep 0.2
          fi
          t0=$(now)
          smbc "$s" "mkdir many$r; cd many$r; lcd $L/many; prompt off; mput *" >/dev/null || die "[$s] mput"
          t1=$(now)
          [ -n "$prof" ] && wait "$prof" ;;
    ls)   local prof=
          if [ -n "${PPROF:-}" ] && [ "${PPROF_ON:-mput}" = ls ] && [ "$s" = pfs ] && [ "$r" = "$ROUNDS" ]; then
            curl -s -o "$PPROF" "http://$METRICS_LISTEN/debug/pprof/profile?seconds=${PPROF_SECONDS:-5}" & prof=$!
            sleep 0.2
          fi
          cmds=; for i in $(seq "$LS_REPEAT"); do cmds="$cmds ls list/*;"; done
          t0=$(now); smbc "$s" "$cmds" > "$T/ls-$s.out" || die "[$s] ls"; t1=$(now)
          [ -n "$prof" ] && wait "$prof"
          i=$(grep -c -E '^ +e[0-9]+\.dat ' "$T/ls-$s.out")
          [ "$i" = $((LS_REPEAT * LIST_N)) ] || die "[$s] ls listed $i entries, not $((LS_REPEAT * LIST_N))" ;;
  esac
  local dt; dt=$(echo "$t1 - $t0" | bc)
  c1=$(cpu smbd); d1=$(cpu pfsd)
  record "$s.$w" "$dt"
  if [ "$s" = pfs ]; then
    case $w in
      mput) REQ_MPUT=$(delta "$m0" "$(requests)" "$SMALL_N") ;;
      ls)   REQ_LS=$(delta "$m0" "$(requests)" $((LS_REPEAT * LIST_N))) ;;
    esac
  fi
  printf '  round %d %-5s [%-5s] %8.2f s   cpu smbd %6.2f s  proxyfsd %6.2f s\n' "$r" "$w" "$s" "$dt" \
    "$(echo "$c1 - $c0" | bc)" "$(echo "$d1 - $d0" | bc)"
}
cleanup_one() { # SHARE WORKLOAD ROUND: untimed
  case $2 in
    get)  smbc "$1" "del big.bin" >/dev/null || die "[$1] del big.bin" ;;
    mput) smbc "$1" "deltree many$3" >/dev/null || die "[$1] deltree many$3" ;;
  esac
}

echo "bench-smb: smbd $(smbd -V | awk '{print $2}'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "rounds $ROUNDS, workloads: $ONLY ($BIG_MB MiB, $SMALL_N small files, $LIST_N entries x $LS_REPEAT ls)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="pfs plain"; else order="plain pfs"; fi
  for w in $ONLY; do
    # get needs the file of put: with put skipped, put it untimed once
    if [ "$w" = get ] && [[ " $ONLY " != *" put "* ]]; then
      for s in $order; do smbc "$s" "put $L/big.bin big.bin" >/dev/null || die "[$s] put"; done
    fi
    for s in $order; do run_one "$s" "$w" "$r"; done
    if [ "$w" = get ] && [ "$r" = "$ROUNDS" ]; then # the bytes are right
      for s in $order; do
        got=$("${SMBC[@]}" "//127.0.0.1/$s" -c "get big.bin -" 2>/dev/null | sha256sum | cut -d' ' -f1)
        [ "$got" = "$BIG_SUM" ] || die "[$s] big.bin read back differs"
      done
    fi
    [ "$w" = put ] && [[ " $ONLY " == *" get "* ]] && continue # get uses it
    for s in $order; do cleanup_one "$s" "$w" "$r"; done
  done
done

echo
printf '%-7s %-38s %10s %10s %7s %7s\n' workload what "[plain]" "[pfs]" ratio target
for w in $ONLY; do
  case $w in
    put)  what="$BIG_MB MiB put (MiB/s)";           units=$BIG_MB; target=0.8 ;;
    get)  what="$BIG_MB MiB get (MiB/s)";           units=$BIG_MB; target=0.8 ;;
    mput) what="$SMALL_N small files mput (files/s)"; units=$SMALL_N; target=0.5 ;;
    ls)   what="ls of $LIST_N entries (entries/s)"; units=$((LS_REPEAT * LIST_N)); target=0.5 ;;
  esac
  a=$(echo "scale=1; $units / ${BEST[plain.$w]}" | bc)
  b=$(echo "scale=1; $units / ${BEST[pfs.$w]}" | bc)
  ratio=$(echo "scale=3; ${BEST[plain.$w]} / ${BEST[pfs.$w]}" | bc)
  verdict=MISS; [ "$(echo "$ratio >= $target" | bc)" = 1 ] && verdict=PASS
  printf '%-7s %-38s %10s %10s %6.2fx %6sx %s\n' "$w" "$what" "$a" "$b" "$ratio" "$target" "$verdict"
done
echo
[ -n "${REQ_MPUT:-}" ] && echo "proxyfsd requests per small file (mput, last round): $REQ_MPUT"
[ -n "${REQ_LS:-}" ] && echo "proxyfsd requests per listed entry (ls, last round): $REQ_LS"
exit 0
}
