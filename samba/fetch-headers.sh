#!/bin/bash
# fetch-headers.sh - get Debian's Samba source of exactly the installed smbd's
# version and generate the headers a VFS module is compiled against (no
# library build). Everything is cached in the work dir: a second run only
# checks and prints the flags.
#
#   samba/fetch-headers.sh            prepare; print the work dir's cflags file
#   PROXYFS_SAMBA_WORK=/dir ...       work dir (default /var/tmp/proxyfs-samba)
#
# Output: $WORK/samba-<version>/cflags, one line of -I/-D flags (what
# samba/Makefile reads). Needs root for apt-get (deb-src in a private apt
# configuration; the system's sources are not changed) and ~6 minutes on 2
# cores the first time (configure ~3 min, header generation ~2 min).
set -euo pipefail
WORK=${PROXYFS_SAMBA_WORK:-/var/tmp/proxyfs-samba}
export DEBIAN_FRONTEND=noninteractive
T0=$(date +%s)
say() { echo "fetch-headers: [$(( $(date +%s) - T0 ))s] $*" >&2; }

if ! dpkg-query -W -f='${Status}' samba 2>/dev/null | grep -q 'install ok installed'; then
  echo "fetch-headers: samba is not installed (apt-get install samba smbclient samba-testsuite)" >&2
  exit 1
fi
SAMBA_VER=$(dpkg-query -W -f='${Version}' samba)                  # 2:4.17.12+dfsg-0+deb12u4
UPVER=$(echo "$SAMBA_VER" | sed -E 's/^[0-9]+://; s/-[^-]*$//')   # 4.17.12+dfsg
OUT="$WORK/samba-$SAMBA_VER"
OUT=${OUT//:/_}
CFLAGS_FILE="$OUT/cflags"
if [ -f "$CFLAGS_FILE" ] && [ -f "$OUT/.complete" ]; then
  echo "$CFLAGS_FILE"
  exit 0
fi

say "samba $SAMBA_VER: preparing headers in $OUT"
need=()
for p in dpkg-dev flex bison libparse-yapp-perl libgnutls28-dev zlib1g-dev libtirpc-dev \
         libpopt-dev libtalloc-dev libtevent-dev libtdb-dev libldb-dev libkeyutils-dev \
         libreadline-dev pkg-config python3 perl gcc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing build dependencies: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$OUT"/apt/sources.d "$OUT"/apt/lists/partial "$OUT"/src
SRC="$OUT/src/samba-$UPVER"
if [ ! -f "$SRC/.unpacked" ]; then
  say "fetching the source package samba=$SAMBA_VER (deb-src in a private apt config)"
  srcs=/etc/apt/sources.list.d/debian.sources
  if [ -f "$srcs" ]; then
    sed 's/^Types: deb$/Types: deb deb-src/' "$srcs" > "$OUT"/apt/sources.d/debian-src.sources
  else
    grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | sed 's/^deb /deb-src /' \
      > "$OUT"/apt/sources.d/debian-src.list
  fi
  APTSRC=(-o Dir::Etc::SourceParts="$OUT"/apt/sources.d -o Dir::State::Lists="$OUT"/apt/lists)
  apt-get "${APTSRC[@]}" update -qq
  rm -rf "$SRC"
  (cd "$OUT"/src && apt-get "${APTSRC[@]}" source --download-only -qq "samba=$SAMBA_VER" \
     && dpkg-source -x samba_*.dsc "samba-$UPVER" >"$OUT"/dpkg-source.log 2>&1) \
     || { tail -20 "$OUT"/dpkg-source.log >&2; exit 1; }
  rm -f "$OUT"/src/samba_*.orig*.tar.* "$OUT"/src/samba_*.debian.tar.*
  touch "$SRC/.unpacked"
fi

cd "$SRC"
export PYTHON=/usr/bin/python3
if [ ! -f bin/default/include/config.h ]; then
  say "configure (minimal; generates config.h)"
  ./configure -j2 --prefix=/usr --enable-fhs --sysconfdir=/etc --localstatedir=/var \
    --libdir=/usr/lib/x86_64-linux-gnu --with-modulesdir=/usr/lib/x86_64-linux-gnu/samba \
    --without-ad-dc --disable-python --without-ldap --without-ads --without-json \
    --without-libarchive --without-pam --without-winbind --without-systemd --without-quotas \
    --disable-cups --disable-iprint --without-gpgme --disable-avahi --without-acl-support \
    --without-lttng --disable-glusterfs --disable-cephfs --disable-spotlight --without-regedit \
    --without-winexe --without-libunwind --without-ldb-lmdb \
    --with-shared-modules='!vfs_snapper' > "$OUT"/configure.log 2>&1 \
    || { tail -30 "$OUT"/configure.log >&2; exit 1; }
fi

WAF=(env PYTHONHASHSEED=1 WAF_MAKE=1 "$PYTHON" ./buildtools/bin/waf)
if [ ! -f bin/default/librpc/gen_ndr/ndr_misc.h ] || [ ! -f bin/default/source3/param/param_proto.h ]; then
  say "generating headers (pidl IDL targets, error and parameter tables; no library build)"
  TARGETS=$( ( "${WAF[@]}" list 2>/dev/null | grep -oE '^PIDL_[A-Z0-9_]+';
      echo ntstatus_generated werror_generated param_functions.h param_global.h param_local.h \
           s3_param_proto_h VERSION SAMBA_VERSION ) | tr ' ' '\n' | grep -v '^$' | paste -sd, )
  "${WAF[@]}" build -j2 --targets="$TARGETS" > "$OUT"/waf-gen.log 2>&1 \
    || { tail -30 "$OUT"/waf-gen.log >&2; exit 1; }
fi

S=$SRC; B=$SRC/bin/default
# -isystem: warnings from Samba's own headers are not ours to fix; our
# module is compiled with -Wall -Wextra -Werror and these paths exempt only
# Samba's headers from that.
echo "-D__STDC_WANT_LIB_EXT1__=1 -DHAVE_CONFIG_H=1 -D_GNU_SOURCE=1 \
-isystem $B/include -isystem $S/include -isystem $B/source3 -isystem $S/source3 \
-isystem $B/source3/include -isystem $S/source3/include -isystem $S/source3/lib \
-isystem $B/source4 -isystem $S/source4 -isystem $S/lib -isystem $B/lib \
-isystem $S/lib/replace -isystem $B/librpc -isystem $S/librpc -isystem $S -isystem $B \
-isystem $S/source4/include -isystem $S/lib/talloc -isystem $S/lib/tevent \
-isystem $S/lib/tdb/include" > "$CFLAGS_FILE"
grep -m1 -n "define SMB_VFS_INTERFACE_VERSION" "$S"/source3/include/vfs.h >&2 || true
touch "$OUT/.complete"
say "done"
echo "$CFLAGS_FILE"
