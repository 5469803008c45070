// Command proxyfs-fuse mounts a proxyfs volume as a local filesystem
// (FUSE; the filesystem is package fusefs).
//
// Usage:
//
//	proxyfs-fuse [-f] [-o OPTIONS] VOLUME MOUNTPOINT
//
// It mounts VOLUME of the proxyfsd at server=ADDR (default
// $PROXYFS_SERVER, else 127.0.0.1:9450; gateway=ADDR, repeated, names more
// gateways to move to when it cannot be reached) on MOUNTPOINT and goes into the
// background once the mount is there (-f: stays in the foreground, logging
// to stderr). SIGTERM and SIGINT unmount (detached if files are open);
// fusermount3 -u and umount end it too. Options (-o, comma-separated, may
// also follow the operands, as mount.fuse3 passes them) are those of
// fusefs.ParseOptions. An /etc/fstab line:
//
//	default  /mnt/proxyfs  fuse.proxyfs-fuse  server=/run/proxyfs/proxyfsd.sock,allow_other,_netdev  0  0
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "proxyfs-fuse: %v\n", err)
		os.Exit(exitCode(err))
	}
}
