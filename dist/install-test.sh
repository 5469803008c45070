#!/bin/sh
# install-test.sh DESTDIR PREFIX: checks what `make install` put under
# DESTDIR/PREFIX and compiles a C program against it with pkg-config only.
set -eu
root=$1$2
for f in bin/proxyfsd include/proxyfs.h lib/libproxyfs.so lib/libproxyfs.so.2 \
	lib/pkgconfig/libproxyfs.pc etc/proxyfs/proxyfsd.toml lib/systemd/system/proxyfsd.service \
	share/doc/proxyfs/proxyfsd.toml.example; do
	test -e "$root/$f" || { echo "install-test: $f not installed" >&2; exit 1; }
done
grep -q "ExecStart=$2/bin/proxyfsd -config $2/etc/proxyfs/proxyfsd.toml" "$root/lib/systemd/system/proxyfsd.service" ||
	{ echo "install-test: unit has wrong paths" >&2; exit 1; }
"$root/bin/proxyfsd" -version
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/t.c" <<'C'
#include <proxyfs.h>
#include <stdio.h>
int main(void) {
	mount_handle_t *mh = NULL;
	/* Nothing listens on this socket: the mount must fail cleanly with ENODEV. */
	proxyfs_set_server("/nonexistent/proxyfsd.sock");
	int err = proxyfs_mount("default", 0, "nobody", 0, 0, &mh);
	printf("proxyfs_mount without a daemon: %d\n", err);
	return err == 0;
}
C
# The .pc file names the real prefix; point pkg-config at the staged tree.
PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$1" \
	cc -Wall -Wextra -Werror -o "$tmp/t" "$tmp/t.c" $(PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$1" pkg-config --cflags --libs libproxyfs)
LD_LIBRARY_PATH="$root/lib" "$tmp/t"
echo "install-test: ok"
