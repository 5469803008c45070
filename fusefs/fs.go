package fusefs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// FS answers FUSE requests for one mounted volume. Create it with New and
// serve it with Serve (or hand it to fuse.NewServer yourself). Its methods
// are called by go-fuse, concurrently.
type FS struct {
	fuse.RawFileSystem // ENOSYS for the requests FS does not implement (ioctl, statx, poll)

	m    *client.Mount
	opts Options
	srv  atomic.Pointer[fuse.Server]

	// mu guards nodes, files and dirs. It is never held during a server
	// call.
	mu    sync.Mutex
	nodes map[uint64]*node
	files map[uint64]*file
	dirs  map[uint64]*dirHandle
	fh    uint64 // the last FUSE handle given out (files and directories share the space)
}

// node is what FS keeps about an inode the kernel knows or has open.
type node struct {
	lookups uint64 // the kernel's references (lookup count)
	opens   int    // open files (FUSE open or create, not yet released)
	// The mtime and size last handed to the kernel (ok: there were any):
	// an open keeps the kernel's page cache only if the file still has
	// them.
	mtime client.Timespec
	size  uint64
	ok    bool
	// locks is the server handle that holds the POSIX locks of every
	// process on this inode (locks.go), nil until the first lock; owners
	// are the lock owners that took locks through it, with their pids.
	locks  *client.Handle
	owners map[uint64]uint32
}

// file is an open file: a FUSE file handle.
type file struct {
	ino uint64
	h   *client.Handle // the server's handle: keeps an unlinked file alive, holds its flock lock
	// owners are the lock owners whose POSIX locks were taken through
	// this file (guarded by FS.mu); see FS.Release.
	owners map[uint64]bool
}

// New returns the filesystem of mount m with options o (zero fields take
// the defaults of DefaultOptions).
func New(m *client.Mount, o Options) *FS {
	return &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		m:             m,
		opts:          o.withDefaults(),
		nodes:         map[uint64]*node{},
		files:         map[uint64]*file{},
		dirs:          map[uint64]*dirHandle{},
	}
}

// String names the filesystem (go-fuse's debug output).
func (fs *FS) String() string { return "proxyfs:" + fs.m.Volume() }

// Init is called by go-fuse before the first request; it keeps the server
// for notifications to the kernel.
func (fs *FS) Init(s *fuse.Server) { fs.srv.Store(s) }

// requestCtx is a context whose Done channel is go-fuse's cancel channel
// of one request, closed when the kernel interrupts the request (the caller
// got a signal) or the mount goes away.
type requestCtx struct {
	context.Context
	cancel <-chan struct{}
}

// Done is closed when the kernel interrupts the request.
func (c requestCtx) Done() <-chan struct{} { return c.cancel }

// Err is context.Canceled once Done is closed.
func (c requestCtx) Err() error {
	select {
	case <-c.cancel:
		return context.Canceled
	default:
		return nil
	}
}

// as returns the context and the Mount with which a request of caller c
// talks to the server. It is the one place that decides who the server
// sees: today every call acts as the Mount's identity (root; the kernel
// has checked the caller's permissions, default_permissions), and inodes a
// caller creates are then given to it (own). With per-call identities in
// the client, this is where the caller's uid, gid and groups (c, and
// callerGroups) go into the call.
//
// The context ends only when the mount goes away: the kernel interrupts a
// request for every signal its caller gets, and Go programs get many (the
// runtime preempts goroutines with SIGURG), so honoring interrupts would
// fail plain reads and opens with EINTR. A caller can always be killed
// (the kernel stops waiting for a request of a dying process), and the
// timeout option bounds every call. Only lock waits end at an interrupt
// (interruptible).
func (fs *FS) as(cancel <-chan struct{}, c *fuse.Caller) (context.Context, *client.Mount) {
	_ = c
	_ = cancel
	return context.Background(), fs.m
}

// interruptible returns a context that ends when the kernel interrupts the
// request (its caller got a signal), for calls that wait for something
// other than the server (a lock).
func interruptible(ctx context.Context, cancel <-chan struct{}) context.Context {
	if cancel == nil {
		return ctx
	}
	return requestCtx{Context: ctx, cancel: cancel}
}

// own gives the inode st, just created in directory parent by caller c
// acting as the Mount's identity, to the caller: its uid, and its gid
// unless parent is a setgid directory (whose group the inode took). The
// mode is sent again with the owner, so that no bit is cleared. It returns
// the inode's attributes. Once calls carry the caller's identity, the
// server makes the inode the caller's and own has nothing to do.
func (fs *FS) own(ctx context.Context, m *client.Mount, c *fuse.Caller, parent uint64, st client.Stat) (client.Stat, error) {
	if c.Uid == st.UID && c.Gid == st.GID {
		return st, nil
	}
	a := client.Attrs{Mask: wire.SetUID | wire.SetMode, UID: c.Uid, Mode: st.Mode & 0o7777}
	if c.Gid != st.GID {
		pst, err := m.GetStat(ctx, parent)
		if err != nil {
			return st, err
		}
		if pst.Mode&syscall.S_ISGID == 0 {
			a.Mask |= wire.SetGID
			a.GID = c.Gid
		}
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		a.Mask &^= wire.SetMode // a symlink's mode cannot be set
	}
	return m.SetAttr(ctx, st.Ino, a)
}

// status converts an error of the client (or of FS) to the errno the
// kernel returns to the caller: the server's errno, EINTR for a call the
// kernel interrupted, EIO for anything else. It is the only conversion.
func status(err error) fuse.Status {
	if err == nil {
		return fuse.OK
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return fuse.Status(errno)
	}
	if errors.Is(err, context.Canceled) {
		return fuse.EINTR
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fuse.Status(syscall.ETIMEDOUT)
	}
	return fuse.EIO
}

// fillAttr converts the server's attributes to the kernel's.
func fillAttr(st *client.Stat, a *fuse.Attr) {
	a.Ino = st.Ino
	a.Size = st.Size
	a.Blocks = st.Blocks
	a.Blksize = uint32(st.Blksize)
	if a.Blksize == 0 {
		a.Blksize = 4096
	}
	a.Atime, a.Atimensec = uint64(st.Atime.Sec), uint32(st.Atime.Nsec)
	a.Mtime, a.Mtimensec = uint64(st.Mtime.Sec), uint32(st.Mtime.Nsec)
	a.Ctime, a.Ctimensec = uint64(st.Ctime.Sec), uint32(st.Ctime.Nsec)
	a.Mode = st.Mode
	a.Nlink = uint32(st.Nlink)
	a.Uid, a.Gid = st.UID, st.GID
}

// attr fills out with st for a getattr or setattr reply and records what
// the kernel now caches.
func (fs *FS) attr(st *client.Stat, out *fuse.AttrOut) {
	fillAttr(st, &out.Attr)
	out.SetTimeout(fs.opts.AttrTimeout)
	fs.mu.Lock()
	if n := fs.nodes[st.Ino]; n != nil {
		n.mtime, n.size, n.ok = st.Mtime, st.Size, true
	}
	fs.mu.Unlock()
}

// entry fills out with st for a reply that gives the kernel a reference to
// the inode (lookup, create, mkdir, ...) and counts that reference.
func (fs *FS) entry(st *client.Stat, out *fuse.EntryOut) {
	out.NodeId = st.Ino
	out.Generation = 1
	fillAttr(st, &out.Attr)
	out.SetEntryTimeout(fs.opts.EntryTimeout)
	out.SetAttrTimeout(fs.opts.AttrTimeout)
	fs.mu.Lock()
	n := fs.node(st.Ino)
	n.lookups++
	n.mtime, n.size, n.ok = st.Mtime, st.Size, true
	fs.mu.Unlock()
}

// node returns the record of inode ino, making it. Called with fs.mu held.
func (fs *FS) node(ino uint64) *node {
	n := fs.nodes[ino]
	if n == nil {
		n = &node{}
		fs.nodes[ino] = n
	}
	return n
}

// drop forgets the record of ino if the kernel no longer knows the inode
// and has it open nowhere. Called with fs.mu held.
func (fs *FS) drop(ino uint64, n *node) {
	if n.lookups == 0 && n.opens == 0 && n.locks == nil {
		delete(fs.nodes, ino)
	}
}

// Lookups returns the kernel's lookup count of inode ino as FS counts it
// (0 for an inode the kernel does not know), for tests and debugging.
func (fs *FS) Lookups(ino uint64) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if n := fs.nodes[ino]; n != nil {
		return n.lookups
	}
	return 0
}

// Forget takes nlookup references to nodeid away (FUSE forget and
// batch_forget). The server needs no call: it frees a file when its last
// name and its last handle are gone.
func (fs *FS) Forget(nodeid, nlookup uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.nodes[nodeid]
	if n == nil {
		return
	}
	if nlookup > n.lookups {
		nlookup = n.lookups
	}
	n.lookups -= nlookup
	fs.drop(nodeid, n)
}
