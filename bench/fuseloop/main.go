// Command fuseloop mounts go-fuse's own loopback filesystem: DIR shown at
// MOUNTPOINT through FUSE, with the kernel options proxyfs-fuse uses by
// default (1 MiB requests and readahead, 1 s attribute and entry timeouts,
// requests served concurrently). make bench-fuse runs its workloads on
// it too: the cost of FUSE alone on the same disk, with no daemon behind
// it, which is the floor of any FUSE filesystem on the machine whose
// server sees the data it stores.
//
// go-fuse's loopback hands the kernel each open file's descriptor for
// FUSE passthrough (Linux 6.9 and later, as root): the kernel then reads
// and writes the backing file itself, and READ and WRITE requests never
// reach the server, which is not FUSE's cost but a local filesystem's.
// fuseloop turns that off unless -passthrough is given.
//
//	fuseloop [-passthrough] DIR MOUNTPOINT
//
// It serves in the foreground until the mount is unmounted (fusermount3
// -u, umount) or it gets SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	passthrough := flag.Bool("passthrough", false, "let the kernel read and write the backing files itself (FUSE passthrough)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: fuseloop [-passthrough] DIR MOUNTPOINT")
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	if !*passthrough {
		root.(*fs.LoopbackNode).RootData.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
			return &node{LoopbackNode: fs.LoopbackNode{RootData: r}}
		}
	}
	second := time.Second
	srv, err := fs.Mount(flag.Arg(1), root, &fs.Options{
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

// node is a loopback node whose open files refuse passthrough.
type node struct {
	fs.LoopbackNode
}

// Open opens the backing file as the loopback does, without passthrough.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	return noPassthrough(fh), fl, errno
}

// Create creates and opens the backing file as the loopback does, without
// passthrough.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return in, noPassthrough(fh), fl, errno
}

// file is a loopback file that declines passthrough, so that its reads
// and writes come to the server.
type file struct {
	*fs.LoopbackFile
}

// PassthroughFd declines passthrough.
func (*file) PassthroughFd() (int, bool) { return 0, false }

func noPassthrough(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		return &file{lf}
	}
	return fh
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fuseloop:", err)
	os.Exit(1)
}
