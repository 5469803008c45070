package fusefs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

	// vmu guards views, the per-call identities of recent callers (as).
	vmu   sync.Mutex
	views map[viewKey]view
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
	// wrote: data was written (or truncated) through this mount since
	// mtime and size were recorded, so the server's new ones are this
	// mount's own change, whose data the kernel's page cache already
	// has (see seen).
	wrote bool
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
		views:         map[viewKey]view{},
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
// sees: the caller, its uid, gid and supplementary groups (callerGroups,
// from /proc: FUSE requests carry no groups), as a per-call identity
// (client.Mount.As), so that the server checks the caller's permissions
// and makes the inodes it creates the caller's. I/O through an open file
// goes through its server handle, whose access mode was checked at open
// (file.go), so a file stays usable as open(2) promises after a chmod or
// chown. Identities are cached per process for identityTTL.
//
// The context ends only when the mount goes away: the kernel interrupts a
// request for every signal its caller gets, and Go programs get many (the
// runtime preempts goroutines with SIGURG), so honoring interrupts would
// fail plain reads and opens with EINTR. A caller can always be killed
// (the kernel stops waiting for a request of a dying process), and the
// timeout option bounds every call. Only lock waits end at an interrupt
// (interruptible).
func (fs *FS) as(cancel <-chan struct{}, c *fuse.Caller) (context.Context, *client.Mount) {
	_ = cancel
	return context.Background(), fs.view(c)
}

// identityTTL is how long the identity of a process (its supplementary
// groups) is used before /proc is read again.
const identityTTL = time.Second

// maxViews bounds the identity cache; it is emptied when full.
const maxViews = 4096

// viewKey names a caller: a process and the ids it called with.
type viewKey struct{ pid, uid, gid uint32 }

// view is the Mount view of one caller and when it was made.
type view struct {
	m    *client.Mount
	made time.Time
}

// view returns the Mount view whose calls carry caller c's identity.
func (fs *FS) view(c *fuse.Caller) *client.Mount {
	k := viewKey{c.Pid, c.Uid, c.Gid}
	now := time.Now()
	fs.vmu.Lock()
	v, ok := fs.views[k]
	fs.vmu.Unlock()
	if ok && now.Sub(v.made) < identityTTL {
		return v.m
	}
	id := client.Identity{UID: c.Uid, GID: c.Gid}
	if c.Pid != 0 {
		if gs, err := callerGroups(c.Pid); err == nil {
			// The server takes at most wire.MaxMountGroups: a caller
			// with more is checked against the first ones only.
			id.Groups = gs[:min(len(gs), wire.MaxMountGroups)]
		}
	}
	m := fs.m.As(id)
	fs.vmu.Lock()
	if len(fs.views) >= maxViews {
		clear(fs.views)
	}
	fs.views[k] = view{m: m, made: now}
	fs.vmu.Unlock()
	return m
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
		fs.seen(n, st)
	}
	fs.mu.Unlock()
}

// seen records st as the attributes the kernel now has for node n, and
// keeps the kernel's page cache right: the mount asks the kernel for
// explicit data cache control (it never drops a file's pages by itself
// when it sees a new mtime), so when the data changed on the server
// through another client (a new mtime or size, and no write through this
// mount since the last record), the file's pages are dropped here
// (notify). A change this mount made itself needs nothing: its writes went
// through the page cache. Called with fs.mu held.
func (fs *FS) seen(n *node, st *client.Stat) {
	changed := n.ok && (n.mtime != st.Mtime || n.size != st.Size)
	if changed && !n.wrote && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		if srv := fs.srv.Load(); srv != nil {
			ino := st.Ino
			// Not from the request's goroutine: the kernel may hold
			// the pages the invalidation waits for.
			go srv.InodeNotify(ino, 0, 0)
		}
	}
	n.mtime, n.size, n.ok, n.wrote = st.Mtime, st.Size, true, false
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
	fs.seen(n, st)
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
