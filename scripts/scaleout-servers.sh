#!/bin/sh
# Start or stop a private etcd and a one-node OpenStack Swift ("Swift all in
# one") on loopback, for trying and testing the etcdswift engine. Everything
# lives under DIR: configuration, rings, data, logs and pid files. Nothing
# outside DIR is touched, and no privileged port is used.
#
#   scripts/scaleout-servers.sh start DIR   start them; print the endpoints
#   scripts/scaleout-servers.sh stop DIR    stop them (SIGTERM, then SIGKILL)
#   scripts/scaleout-servers.sh env DIR     print the endpoints again
#   scripts/scaleout-servers.sh kill DIR NAME     kill -9 one server
#   scripts/scaleout-servers.sh restart DIR NAME  start it again (same ports, same data)
#
# ETCD_MEMBERS=3 in the environment of start makes etcd a cluster of that
# many members (default 1), each with its own ports and data directory.
# SCALEOUT_TLS=1 makes both servers TLS-only: start makes a throwaway CA
# with openssl (DIR/tls), etcd serves https and requires a client
# certificate signed by it (its peers talk TLS too), and Swift's proxy
# serves https (its own cert_file/key_file: fine for tests; production puts
# a TLS terminator in front of the proxy).
# NAME is etcd1, etcd2, ... for the etcd members, swift-proxy,
# swift-object, swift-container, swift-account or memcached.
#
# start prints shell assignments, also kept in DIR/env:
#
#   ETCD_ENDPOINTS=http://127.0.0.1:PORT[,http://127.0.0.1:PORT...]
#   SWIFT_AUTH_URL=http://127.0.0.1:PORT/auth/v1.0
#   SWIFT_USER=test:tester
#   SWIFT_KEY=testing
#   S3_ENDPOINT=http://127.0.0.1:PORT    Swift's S3 API (s3api), same proxy
#   S3_REGION=us-east-1
#   S3_ACCESS_KEY=test:tester
#   S3_SECRET_KEY=testing
#
# and with SCALEOUT_TLS=1 (the URLs are then https):
#
#   ETCD_CA_FILE=DIR/tls/ca.pem        the CA of both servers' certificates
#   ETCD_CERT_FILE=DIR/tls/client.pem  etcd client certificate and key
#   ETCD_KEY_FILE=DIR/tls/client.key
#   OBJECT_CA_FILE=DIR/tls/ca.pem      the CA of Swift's (and S3's) certificate
#
# Packages (Debian bookworm): etcd-server, swift, swift-proxy, swift-account,
# swift-container, swift-object, memcached (tempauth keeps its tokens there);
# openssl for SCALEOUT_TLS=1. The S3 API is the s3api middleware of
# python3-swift (a dependency of swift), with tempauth's users as S3 keys.
# etcd runs with --max-txn-ops and --max-request-bytes raised above their
# defaults (128 operations, 1.5 MiB): a proxyfs batch is one etcd transaction
# (see vfsbackend/etcdswift). Swift's storage directory must take user
# extended attributes (ext4, xfs, tmpfs on Linux >= 6.6); start checks.
set -eu

usage() {
	echo "usage: $0 start|stop|env DIR, or $0 kill|restart DIR NAME" >&2
	exit 2
}
[ $# -ge 2 ] || usage
cmd=$1
dir=$2

# launch NAME COMMAND...: run a server in the background, logging to
# DIR/log/NAME.out, its pid in DIR/run/NAME.pid; the command is kept in
# DIR/run/NAME.sh so that restart can run it again. (Arguments must not
# hold spaces or quotes; DIR must not either.)
launch() {
	name=$1
	shift
	printf '%s\n' "exec $* >>$dir/log/$name.out 2>&1" >"$dir/run/$name.sh"
	sh "$dir/run/$name.sh" &
	echo $! >"$dir/run/$name.pid"
}

# freeport prints a TCP port that was free on 127.0.0.1 a moment ago.
freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# waitport HOST PORT SECONDS: wait until something listens there.
waitport() {
	python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection((host, port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

stop() {
	for f in "$dir"/run/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
	done
	for f in "$dir"/run/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$f"
	done
}

start() {
	for b in etcd swift-ring-builder swift-proxy-server swift-account-server \
		swift-container-server swift-object-server memcached; do
		if ! command -v "$b" >/dev/null 2>&1; then
			echo "$0: $b not found: apt-get install etcd-server swift swift-proxy swift-account swift-container swift-object memcached" >&2
			exit 3
		fi
	done
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -e "$dir/env" ]; then
		echo "$0: $dir already holds servers (stop them first)" >&2
		exit 1
	fi
	mkdir -p "$dir/run" "$dir/log" "$dir/swift" "$dir/srv/sdb1"
	# Swift keeps object metadata in user xattrs.
	if ! python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.proxyfs.test", b"1")' "$dir/srv/sdb1" 2>/dev/null; then
		echo "$0: $dir/srv does not take user extended attributes; use a directory on ext4, xfs or tmpfs (Linux >= 6.6)" >&2
		exit 1
	fi
	user=$(id -un)

	# TLS: a CA, a certificate for 127.0.0.1 that serves (and, for etcd's
	# peers, also authenticates as a client), and a client certificate.
	tls=${SCALEOUT_TLS:-0}
	scheme=http
	etls=""
	ptls=""
	if [ "$tls" = 1 ]; then
		command -v openssl >/dev/null 2>&1 || {
			echo "$0: SCALEOUT_TLS=1 needs openssl: apt-get install openssl" >&2
			exit 3
		}
		scheme=https
		t=$dir/tls
		mkdir -p "$t"
		(
			cd "$t"
			ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
			openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=proxyfs-test-ca \
				-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
			openssl req $ec -keyout server.key -out server.csr -subj /CN=127.0.0.1
			openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
			printf 'extendedKeyUsage=clientAuth\n' >client.ext
			openssl req $ec -keyout client.key -out client.csr -subj /CN=proxyfs
			openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
		) >"$dir/log/openssl.out" 2>&1 || {
			echo "$0: openssl failed:" >&2
			cat "$dir/log/openssl.out" >&2
			exit 1
		}
		etls="--cert-file $t/server.pem --key-file $t/server.key --trusted-ca-file $t/ca.pem --client-cert-auth"
		ptls="--peer-cert-file $t/server.pem --peer-key-file $t/server.key --peer-trusted-ca-file $t/ca.pem --peer-client-cert-auth"
	fi

	# etcd: ETCD_MEMBERS members (default 1); fsync as in production (no
	# --unsafe-no-fsync).
	members=${ETCD_MEMBERS:-1}
	cluster=""
	cports=""
	i=1
	while [ "$i" -le "$members" ]; do
		c=$(freeport)
		p=$(freeport)
		cports="$cports $c"
		eval "ec$i=$c ep$i=$p"
		cluster="$cluster${cluster:+,}etcd$i=$scheme://127.0.0.1:$p"
		i=$((i + 1))
	done
	endpoints=""
	i=1
	while [ "$i" -le "$members" ]; do
		eval "c=\$ec$i p=\$ep$i"
		mkdir -p "$dir/etcd$i"
		launch "etcd$i" etcd --name "etcd$i" --data-dir "$dir/etcd$i" \
			--listen-client-urls "$scheme://127.0.0.1:$c" --advertise-client-urls "$scheme://127.0.0.1:$c" \
			--listen-peer-urls "$scheme://127.0.0.1:$p" --initial-advertise-peer-urls "$scheme://127.0.0.1:$p" \
			$etls $ptls \
			--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token proxyfs-test \
			--max-txn-ops 16384 --max-request-bytes 16777216 \
			--auto-compaction-mode revision --auto-compaction-retention 10000 \
			--log-outputs "$dir/log/etcd$i.log" --logger zap
		endpoints="$endpoints${endpoints:+,}$scheme://127.0.0.1:$c"
		i=$((i + 1))
	done

	mc=$(freeport)
	launch memcached memcached -l 127.0.0.1 -p "$mc" -U 0 -m 32 -u "$user"

	sp=$(freeport)
	sa=$(freeport)
	sc=$(freeport)
	so=$(freeport)
	s=$dir/swift
	cat >"$s/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = proxyfs-test
swift_hash_path_prefix = proxyfs-test

[storage-policy:0]
name = Policy-0
default = yes
EOF
	common="[DEFAULT]
devices = $dir/srv
mount_check = false
disable_fallocate = true
swift_dir = $s
user = $user
workers = 0
log_name = %s
log_facility = LOG_LOCAL0
log_udp_host =
log_level = WARNING
"
	# Logging goes to syslog by default; none here, so send it nowhere
	# (errors still reach stderr, kept in DIR/log).
	for srv in account container object; do
		case $srv in account) port=$sa ;; container) port=$sc ;; object) port=$so ;; esac
		{
			printf "$common" "$srv-server"
			echo "bind_ip = 127.0.0.1"
			echo "bind_port = $port"
			echo
			echo "[pipeline:main]"
			echo "pipeline = $srv-server"
			echo
			echo "[app:$srv-server]"
			echo "use = egg:swift#$srv"
			echo
			echo "[$srv-replicator]"
			echo "[$srv-updater]"
			echo "[$srv-auditor]"
		} >"$s/$srv-server.conf"
		(
			cd "$s"
			swift-ring-builder "$srv.builder" create 0 1 1 >/dev/null
			swift-ring-builder "$srv.builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "$port" --device sdb1 --weight 1 >/dev/null
			swift-ring-builder "$srv.builder" rebalance >/dev/null 2>&1 || true
		)
		[ -f "$s/$srv.ring.gz" ] || {
			echo "$0: swift-ring-builder made no $srv ring" >&2
			exit 1
		}
	done
	{
		printf "$common" proxy-server
		if [ "$tls" = 1 ]; then
			echo "cert_file = $dir/tls/server.pem"
			echo "key_file = $dir/tls/server.key"
		fi
		cat <<EOF
bind_ip = 127.0.0.1
bind_port = $sp

# s3api before tempauth: S3 requests are signed with tempauth's users
# (access key test:tester, secret key testing).
[pipeline:main]
pipeline = catch_errors proxy-logging cache s3api tempauth proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# One node, no replica to turn to: try a server that failed again after a
# second rather than a minute (Swift's default suits several replicas).
error_suppression_interval = 1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
storage_url_scheme = $scheme

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mc

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:proxy-logging]
use = egg:swift#proxy_logging
EOF
	} >"$s/proxy-server.conf"
	for srv in account container object proxy; do
		launch "swift-$srv" "swift-$srv-server" "$s/$srv-server.conf"
	done

	ok=true
	for p in $cports; do
		waitport 127.0.0.1 "$p" 30 || ok=false
	done
	for p in $mc $sa $sc $so $sp; do
		waitport 127.0.0.1 "$p" 60 || ok=false
	done
	if ! $ok; then
		echo "$0: the servers did not start; logs in $dir/log:" >&2
		tail -n 20 "$dir"/log/* >&2 || true
		stop
		exit 1
	fi
	cat >"$dir/env" <<EOF
ETCD_ENDPOINTS=$endpoints
SWIFT_AUTH_URL=$scheme://127.0.0.1:$sp/auth/v1.0
SWIFT_USER=test:tester
SWIFT_KEY=testing
S3_ENDPOINT=$scheme://127.0.0.1:$sp
S3_REGION=us-east-1
S3_ACCESS_KEY=test:tester
S3_SECRET_KEY=testing
EOF
	if [ "$tls" = 1 ]; then
		cat >>"$dir/env" <<EOF
ETCD_CA_FILE=$dir/tls/ca.pem
ETCD_CERT_FILE=$dir/tls/client.pem
ETCD_KEY_FILE=$dir/tls/client.key
OBJECT_CA_FILE=$dir/tls/ca.pem
EOF
	fi
	cat "$dir/env"
}

case $cmd in
start) start ;;
stop)
	stop
	rm -f "$dir/env"
	;;
env) cat "$dir/env" ;;
kill)
	[ $# -eq 3 ] && [ -e "$dir/run/$3.sh" ] || usage
	if [ -e "$dir/run/$3.pid" ]; then
		pid=$(cat "$dir/run/$3.pid")
		kill -9 "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
		rm -f "$dir/run/$3.pid"
	fi
	;;
restart)
	[ $# -eq 3 ] && [ -e "$dir/run/$3.sh" ] || usage
	if [ -e "$dir/run/$3.pid" ] && kill -0 "$(cat "$dir/run/$3.pid")" 2>/dev/null; then
		echo "$0: $3 is running" >&2
		exit 1
	fi
	sh "$dir/run/$3.sh" &
	echo $! >"$dir/run/$3.pid"
	;;
*) usage ;;
esac
