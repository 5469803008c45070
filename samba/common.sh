# samba/common.sh - setup shared by samba/test.sh and samba/bench.sh
# (sourced, not run). The caller sets HERE (this directory), TOP (the
# project), T (its temporary directory), and defines die MESSAGE.
#
#   free_port N                first loopback TCP port >= N nothing listens on
#   pfs_take_lock              one run at a time per machine (the module goes
#                              into smbd's one MODULESDIR)
#   pfs_build_module           libproxyfs, proxyfs.so, check-symbols, make
#                              install into $T/destdir; installs a private copy
#                              MODULESDIR/vfs/$VFS_NAME.so (sets MODDIR, VFS_NAME;
#                              pfs_remove_module removes it)
#   pfs_build_daemon           proxyfsd (unless $PROXYFSD is set) and pfs into $T
#                              (sets PROXYFSD, PFS)
#   pfs_write_config           $T/proxyfsd.toml: TCP on a free port (PFS_ADDR),
#                              Unix socket $T/proxyfsd.sock (PFS_SOCK), volume
#                              "pfs" under $T/data; METRICS_LISTEN ("" = off),
#                              PFS_LOG_LEVEL, PFS_INLINE_BYTES
#   start_pfsd / stop_pfsd     (re)start and stop proxyfsd ($T/proxyfsd.pid)
#   smb_global_conf DIR PORT   the [global] section of a private smbd in DIR
#   smb_start DIR PORT         start smbd -s DIR/smb.conf, wait for the port
#   smb_stop DIR               stop it
#   smb_add_user CONF USER PASSWORD   a local user (useradd -M) with an SMB password

free_port() { # first port >= $1 nothing listens on
  local p=$1
  while ss -Hltn "sport = :$p" | grep -q .; do p=$((p + 1)); done
  echo "$p"
}

pfs_take_lock() {
  exec 9>/run/lock/proxyfs-samba-test.lock
  flock -n 9 || { echo "$(basename "$0"): another samba test or bench runs; waiting for it"; flock 9; }
}

pfs_packages() { # the Debian packages the scripts use
  local need=() p
  for p in samba smbclient "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || die "apt-get install ${need[*]}"
  fi
}

pfs_build_module() {
  make -s -C "$TOP/libproxyfs" libproxyfs.so.2 libproxyfs.so >"$T/build.log" 2>&1 || { cat "$T/build.log"; die "libproxyfs build"; }
  make -s -C "$HERE" proxyfs.so >>"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; die "module build"; }
  make -s -C "$HERE" check-symbols >>"$T/build.log" 2>&1 || { tail -20 "$T/build.log"; die "module symbols"; }
  # make install, into a staging directory (DESTDIR): it works, and touches nothing
  make -s -C "$HERE" install DESTDIR="$T/destdir" >>"$T/build.log" 2>&1 || { tail -20 "$T/build.log"; die "module install"; }
  MODDIR=$(smbd -b | awk '/MODULESDIR:/ {print $2}')/vfs
  [ -f "$T/destdir$MODDIR/proxyfs.so" ] || die "make install did not install $MODDIR/proxyfs.so"
  # The private smbd loads a copy of its own, MODULESDIR/vfs/proxyfs_test_PID.so
  # (the module registers under its file's name): runs of other trees on the
  # same machine, and an installed proxyfs.so, are left alone.
  VFS_NAME=proxyfs_test_$$
  install -d -m 0755 "$MODDIR" || die "mkdir $MODDIR"
  install -m 0644 "$HERE/proxyfs.so" "$MODDIR/$VFS_NAME.so" || die "install $MODDIR/$VFS_NAME.so"
}
pfs_remove_module() {
  [ -n "${VFS_NAME:-}" ] && rm -f "$MODDIR/$VFS_NAME.so"
}

pfs_build_daemon() {
  if [ -z "${PROXYFSD:-}" ]; then
    (cd "$TOP" && go build -o "$T/proxyfsd" ./cmd/proxyfsd && go build -o "$T/pfs" ./cmd/pfs) \
      >>"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; die "go build"; }
    PROXYFSD=$T/proxyfsd
  else
    (cd "$TOP" && go build -o "$T/pfs" ./cmd/pfs) >>"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; die "go build pfs"; }
  fi
  PFS=$T/pfs
}

pfs_write_config() {
  mkdir -p "$T/data"
  PFS_PORT=$(free_port 19450)
  PFS_ADDR=127.0.0.1:$PFS_PORT
  # smbd reaches proxyfsd on the Unix socket, where proxyfsd knows it for a
  # root process (SO_PEERCRED; its saved uid is 0 while it acts for a user)
  # and lets it act as every user; pfs, run as root here, uses TCP.
  PFS_SOCK=$T/proxyfsd.sock
  cat > "$T/proxyfsd.toml" <<EOF
[server]
tcp = "$PFS_ADDR"
unix = "$PFS_SOCK"
mount_grace = "5s"
reclaim_grace = "1s"
[metrics]
listen = "${METRICS_LISTEN:-}"
pprof = ${PFS_PPROF:-false}
[log]
level = "${PFS_LOG_LEVEL:-info}"
[[volume]]
name = "pfs"
engine = "local"
path = "$T/data/pfs"
auto_format = true
inline_bytes = ${PFS_INLINE_BYTES:-4096}
EOF
  : > "$T/proxyfsd.log"
}
start_pfsd() {
  local n0; n0=$(grep -c "^proxyfsd ready" "$T/proxyfsd.log" 2>/dev/null)
  (cd "$T" && exec "$PROXYFSD" -config "$T/proxyfsd.toml" >>"$T/proxyfsd.log" 2>&1) &
  PFSD_PID=$!
  echo "$PFSD_PID" > "$T/proxyfsd.pid"
  for _ in $(seq 100); do
    [ "$(grep -c "^proxyfsd ready" "$T/proxyfsd.log" 2>/dev/null)" -gt "${n0:-0}" ] && return 0
    kill -0 "$PFSD_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
stop_pfsd() {
  local pp; pp=$(cat "$T/proxyfsd.pid" 2>/dev/null)
  [ -n "$pp" ] && kill "$pp" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pp" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

smb_global_conf() { # DIR PORT
  local d=$1 port=$2
  mkdir -p "$d"/{private,lock,state,cache,pid,log,ncalrpc}
  cat <<EOF
[global]
  netbios name = PFSTEST
  server role = standalone server
  interfaces = lo
  bind interfaces only = yes
  smb ports = $port
  disable netbios = yes
  disable spoolss = yes
  load printers = no
  printcap name = /dev/null
  private dir = $d/private
  lock directory = $d/lock
  state directory = $d/state
  cache directory = $d/cache
  pid directory = $d/pid
  ncalrpc dir = $d/ncalrpc
  passdb backend = tdbsam:$d/private/passdb.tdb
  log file = $d/log/log.%m
  log level = ${SMB_LOG_LEVEL:-1}
  max log size = 0
  kernel change notify = no
  getwd cache = ${GETWD_CACHE:-no}
EOF
}
smb_start() { # DIR PORT
  smbd -s "$1/smb.conf" -D || return 1
  for _ in $(seq 100); do ss -Hltn "sport = :$2" | grep -q . && return 0; sleep 0.1; done
  return 1
}
smb_stop() { # DIR
  [ -f "$1/pid/smbd.pid" ] || return 0
  local p; p=$(cat "$1/pid/smbd.pid" 2>/dev/null)
  if [ -n "$p" ] && kill "$p" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  fi
}
smb_add_user() { # CONF USER PASSWORD
  id "$2" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$2" || return 1
  printf '%s\n%s\n' "$3" "$3" | smbpasswd -c "$1" -a -s "$2" >/dev/null
}
