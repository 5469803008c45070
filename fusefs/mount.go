package fusefs

import (
	"fmt"
	"log"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Server is a mounted FS: the kernel's FUSE connection and the goroutines
// that answer it.
type Server struct {
	srv  *fuse.Server
	dir  string
	done chan struct{}
}

// MountOptions returns go-fuse's options for fs: default_permissions if
// asked for (see the package documentation, "Identity"), POSIX and flock locks
// forwarded, 1 MiB requests, the writeback cache if asked for, requests
// served concurrently, and the removal of privileges on a change of data
// or owner left to the server (HANDLE_KILLPRIV_V2: the server clears
// setuid and setgid and drops security.capability in the change's own
// commit, as Linux does, so the kernel no longer asks for
// security.capability before every write).
func (fs *FS) MountOptions() *fuse.MountOptions {
	o := fs.opts
	name := o.FsName
	if name == "" {
		name = "proxyfs:" + fs.m.Volume()
	}
	mo := &fuse.MountOptions{
		AllowOther:   o.AllowOther,
		FsName:       name,
		Name:         "proxyfs",
		MaxWrite:     o.MaxWrite,
		MaxReadAhead: o.MaxWrite,
		EnableLocks:  true,
		// The kernel keeps a file's pages until FS drops them (notify):
		// it would otherwise drop them at every new mtime it sees, this
		// mount's own writes included (FS.seen).
		ExplicitDataCacheControl: true,
		// The kernel's readdir buffers and background requests: enough
		// for several readers at once.
		MaxBackground: 64,
		Debug:         o.Debug,
	}
	if o.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	mo.ExtraCapabilities |= fuse.CAP_HANDLE_KILLPRIV_V2
	if o.WritebackCache {
		mo.ExtraCapabilities |= fuse.CAP_WRITEBACK_CACHE
	}
	if o.Debug {
		mo.Logger = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	}
	return mo
}

// Mount mounts fs on dir (fusermount3 does it, so a user may mount on a
// directory of theirs) and serves it in the background. It returns once the
// kernel has the mount.
func (fs *FS) Mount(dir string) (*Server, error) {
	srv, err := fuse.NewServer(fs, dir, fs.MountOptions())
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	s := &Server{srv: srv, dir: dir, done: make(chan struct{})}
	go func() {
		srv.Serve()
		close(s.done)
	}()
	if err := srv.WaitMount(); err != nil {
		_ = s.Unmount()
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	fs.setReadAhead(dir)
	return s, nil
}

// ReadAhead is the kernel's readahead of a mount (when root mounts): up
// to eight read requests of 1 MiB in flight. The FUSE connection starts
// at the kernel's default (128 KiB), and a sequential reader then waits
// for a round trip to the daemon every 128 KiB; with one request of
// MaxWrite in flight it still waits for each, while the daemon reads its
// data file from the disk. Eight at once let the daemon's reads, the
// transfers and the reader overlap (cold sequential reads: 180 MiB/s on
// average with 1 MiB, 235 MiB/s with 8 MiB, in 11 interleaved runs each
// on the loaded 2-core test machine; BENCHMARKS.md).
const ReadAhead = 8 << 20

// setReadAhead raises the kernel's readahead of the mount to ReadAhead.
// Only root may change it; for anyone else, and if /sys is not there,
// the default stays.
func (fs *FS) setReadAhead(dir string) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	maj, mnr := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", maj, mnr)
	_ = os.WriteFile(p, []byte(strconv.Itoa(max(ReadAhead, fs.opts.MaxWrite)/1024)), 0)
}

// Done is closed when the mount is gone (Unmount, fusermount -u, umount)
// and every request has been answered.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait returns when the mount is gone.
func (s *Server) Wait() { <-s.done }

// Unmount unmounts: as fusermount -u does when nothing uses the mount,
// else detached (umount -l: the mount point is free at once, and the
// kernel sends the open files' last releases as their users close them).
// It returns once the FUSE connection has ended.
func (s *Server) Unmount() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	err := s.srv.Unmount()
	if err != nil {
		// Busy: detach. fusermount3 -u -z needs no privilege for the
		// user who mounted; root can call umount2 itself.
		if derr := syscall.Unmount(s.dir, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("unmount %s: %v (detach: %v)", s.dir, err, derr)
		}
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("unmount %s: the FUSE connection is still open after 10s", s.dir)
	}
	return nil
}
