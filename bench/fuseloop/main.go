// Command fuseloop mounts go-fuse's own loopback filesystem: DIR shown at
// MOUNTPOINT through FUSE, with the kernel options proxyfs-fuse uses by
// default (1 MiB requests and readahead, 1 s attribute and entry timeouts,
// requests served concurrently). make bench-fuse runs its workloads on
// it too: the cost of FUSE alone on the same disk, with no daemon behind
// it, which is the floor of any FUSE filesystem on the machine.
//
//	fuseloop DIR MOUNTPOINT
//
// It serves in the foreground until the mount is unmounted (fusermount3
// -u, umount) or it gets SIGTERM or SIGINT.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: fuseloop DIR MOUNTPOINT")
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(os.Args[1])
	if err != nil {
		fail(err)
	}
	second := time.Second
	srv, err := fs.Mount(os.Args[2], root, &fs.Options{
		AttrTimeout:  &second,
		EntryTimeout: &second,
		MountOptions: fuse.MountOptions{
			FsName:        "fuseloop",
			Name:          "fuseloop",
			MaxWrite:      1 << 20,
			MaxReadAhead:  1 << 20,
			MaxBackground: 64,
		},
	})
	if err != nil {
		fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		if err := srv.Unmount(); err != nil {
			fmt.Fprintln(os.Stderr, "fuseloop: unmount:", err)
		}
	}()
	srv.Wait()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fuseloop:", err)
	os.Exit(1)
}
