#!/bin/sh
# bench/fuse.sh BINDIR: make bench-fuse. Starts a proxyfsd (local engine)
# on a temporary directory, mounts its volume with proxyfs-fuse, and runs
# the same workloads on the mount and on a directory of the local disk
# beside the volume (the limit): fio sequential 1 MiB write with fsync,
# sequential 1 MiB reads (cold: the file's pages evicted on both sides,
# the daemon's data files included; as fio does it by default; cached),
# 4 KiB random read and write, and fusemeta (create, stat, readdir,
# unlink of 10 000 files). Prints each figure and the ratio mount/local. The same
# workloads also run on go-fuse's own loopback filesystem over a third
# directory of the same disk (bench/fuseloop, the same kernel options,
# FUSE passthrough declined): what FUSE alone costs on this machine, with
# no daemon behind it, the floor of any FUSE filesystem whose server sees
# the data it stores; the last two columns are
# loopback/local and mount/loopback. Needs root (or fusermount3), fio and
# python3.
# BENCH_FUSE_SIZE (default 512M) and BENCH_FUSE_OPTS (-o options) tune it.
set -eu
BIN=$1
SIZE=${BENCH_FUSE_SIZE:-512M}
OPTS=${BENCH_FUSE_OPTS:-}
BASE=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-fuse.XXXXXX")
MNT=$BASE/mnt
LOCAL=$BASE/local
LOOPSRC=$BASE/loopsrc
LOOP=$BASE/loop
mkdir -p "$MNT" "$LOCAL" "$LOOPSRC" "$LOOP"
cat > "$BASE/proxyfsd.toml" <<CONF
[server]
tcp = ""
unix = "$BASE/proxyfsd.sock"
[metrics]
listen = ""
[log]
level = "warn"
[[volume]]
name = "bench"
path = "$BASE/vol"
auto_format = true
CONF
"$BIN/proxyfsd" -config "$BASE/proxyfsd.toml" > "$BASE/proxyfsd.log" 2>&1 &
DPID=$!
LPID=
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fusermount3 -u "$LOOP" 2>/dev/null || umount -l "$LOOP" 2>/dev/null || true
	[ -z "$LPID" ] || wait "$LPID" 2>/dev/null || true
	kill "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	rm -rf "$BASE"
}
trap cleanup EXIT INT TERM
i=0
until [ -S "$BASE/proxyfsd.sock" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$BASE/proxyfsd.log"; exit 1; }
	sleep 0.1
done
"$BIN/proxyfs-fuse" -o "server=$BASE/proxyfsd.sock${OPTS:+,$OPTS}" bench "$MNT"
"$BIN/fuseloop" "$LOOPSRC" "$LOOP" 2> "$BASE/fuseloop.log" &
LPID=$!
i=0
until grep -q " $LOOP " /proc/mounts; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$BASE/fuseloop.log"; exit 1; }
	sleep 0.1
done

# fiojob NAME DIR ARGS...: prints the bandwidth in MiB/s (or IOPS for
# randread).
fiojob() {
	name=$1 dir=$2; shift 2
	fio --name="$name" --directory="$dir" --ioengine=psync --output-format=json "$@" > "$BASE/fio.json"
	python3 - "$BASE/fio.json" "$name" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
name = sys.argv[2]
if name == "randread":
    print("%.0f" % j["read"]["iops"])
elif name == "randwrite":
    print("%.0f" % j["write"]["iops"])
elif name == "write":
    print("%.1f" % (j["write"]["bw_bytes"] / 1048576))
else:
    print("%.1f" % (j["read"]["bw_bytes"] / 1048576))
PY
	rm -f "$dir/$name".*
}

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

# evict DIR...: writes back and drops from the page cache every regular
# file under each DIR (fsync, then fadvise(DONTNEED)), so that the next
# read of them comes from the disk. Only these files: the rest of the
# machine's page cache is left alone (no drop_caches).
evict() {
	python3 - "$@" <<'PY'
import os, sys
for top in sys.argv[1:]:
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
PY
}

for where in fuse local loop; do
	case $where in
	fuse) dir=$MNT src=$BASE/vol ;;
	local) dir=$LOCAL src=$LOCAL ;;
	loop) dir=$LOOP src=$LOOPSRC ;;
	esac
	eval "w_$where=\$(fiojob write $dir --rw=write --bs=1M --size=$SIZE --end_fsync=1)"
	# Cold: the file is written and fsynced, then its pages are dropped
	# wherever they are kept -- the local file's, and for a mount the
	# files under it (the daemon's data files; fio drops the mount's own
	# pages before it reads) -- so that every side reads from the disk.
	fio --name=readcold --directory="$dir" --rw=write --bs=1M --size="$SIZE" --ioengine=psync --end_fsync=1 > /dev/null
	evict "$src"
	eval "rcold_$where=\$(fiojob readcold $dir --rw=read --bs=1M --size=$SIZE)"
	# As fio does it by default: the file just written (not fsynced) is
	# read after fio's fadvise(DONTNEED) of it. Locally that leaves its
	# dirty pages (a page-cache copy); through the mount it drops the
	# mount's clean pages, and the daemon serves the data from its own
	# page cache over the socket.
	fio --name=read --directory="$dir" --rw=write --bs=1M --size="$SIZE" --ioengine=psync > /dev/null
	eval "r_$where=\$(fiojob read $dir --rw=read --bs=1M --size=$SIZE)"
	# The same, without fio's fadvise(DONTNEED) before the job: what the
	# page cache keeps of a file this mount (or process) just wrote.
	fio --name=readc --directory="$dir" --rw=write --bs=1M --size="$SIZE" --ioengine=psync > /dev/null
	eval "rc_$where=\$(fiojob readc $dir --rw=read --bs=1M --size=$SIZE --invalidate=0)"
	fio --name=randread --directory="$dir" --rw=write --bs=1M --size=256M --ioengine=psync > /dev/null
	eval "rr_$where=\$(fiojob randread $dir --rw=randread --bs=4k --size=256M --runtime=10 --time_based)"
	eval "rw_$where=\$(fiojob randwrite $dir --rw=randwrite --bs=4k --size=256M --runtime=10 --time_based)"
	eval "m_$where=\$("$BIN/fusemeta" -n 10000 -j 4 "$dir")"
done
mf=$(echo "$m_fuse" | awk '{print $NF}'); ml=$(echo "$m_local" | awk '{print $NF}'); mo=$(echo "$m_loop" | awk '{print $NF}')
# row NAME FUSE LOCAL LOOP TARGET [inverse]: one line of the table; with
# inverse (times, smaller is better) each ratio is turned over.
row() {
	if [ "${6:-}" = inverse ]; then
		printf '%-30s %10s %10s %6s %6s %10s %6s %6s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")" "$5" "$4" "$(ratio "$3" "$4")" "$(ratio "$4" "$2")"
	else
		printf '%-30s %10s %10s %6s %6s %10s %6s %6s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$5" "$4" "$(ratio "$4" "$3")" "$(ratio "$2" "$4")"
	fi
}
printf '%-30s %10s %10s %6s %6s %10s %6s %6s\n' workload fuse local ratio target loopback lp/loc fs/lp
row "seq write 1M + fsync MiB/s" "$w_fuse" "$w_local" "$w_loop" ">=0.6"
row "seq read 1M cold MiB/s" "$rcold_fuse" "$rcold_local" "$rcold_loop" ">=0.6"
row "seq read 1M fio-default MiB/s" "$r_fuse" "$r_local" "$r_loop" "-"
row "seq read 1M cached MiB/s" "$rc_fuse" "$rc_local" "$rc_loop" "-"
row "rand read 4K IOPS" "$rr_fuse" "$rr_local" "$rr_loop" "-"
row "rand write 4K IOPS" "$rw_fuse" "$rw_local" "$rw_loop" "-"
row "metadata 10k files s" "$mf" "$ml" "$mo" ">=0.3" inverse
echo "fuse:     $m_fuse"
echo "local:    $m_local"
echo "loopback: $m_loop"
