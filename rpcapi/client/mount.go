package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// MountOptions are the identity and options of a mount.
type MountOptions struct {
	// ReadOnly mounts the volume read-only: changes fail with EROFS.
	ReadOnly bool
	// User is the user name the mount acts for (informational).
	User string
	// UID and GID are the user and primary group the mount acts as:
	// permissions are checked against them, and they own the inodes the
	// mount creates (a setgid directory gives its own group instead).
	UID, GID uint32
	// Groups are the supplementary groups, for permission checks (at
	// most wire.MaxMountGroups).
	Groups []uint32
}

// Mount is a mounted volume. Its methods are safe for concurrent use. If
// the daemon restarts, the Mount transparently mounts the volume again with
// the same identity (the server hands out a new mount id) and retries the
// call; see the package documentation for the rules.
type Mount struct {
	*mountCore
	// as is the per-call identity of a view made by As (nil: the
	// mount's own identity).
	as *wire.Identity
}

// mountCore is the state a Mount shares with its views (As).
type mountCore struct {
	c      *Client
	volume string
	opts   MountOptions

	st        atomic.Pointer[mountState]
	remountMu chan struct{} // one-slot semaphore: one remount at a time
	unmounted atomic.Bool
	hs        handleSet // open files (handles.go)
}

// Identity is a per-call identity: the user, primary group and
// supplementary groups (at most wire.MaxMountGroups) a call runs as.
type Identity = wire.Identity

// As returns a view of m whose calls run as id instead of the mount's
// identity: every call it makes, on either channel, carries id, and the
// server checks permissions against it. Only a connection the server
// lets act as other users (a gateway: by default root on the Unix socket
// or loopback TCP, or a token that acts as "*") may use another identity
// than its own; others get EPERM. The view shares the mount (its id, its
// open files, its remounts); unmounting either unmounts both. A view of a
// view replaces the identity.
func (m *Mount) As(id Identity) *Mount {
	id.Groups = append([]uint32(nil), id.Groups...)
	return &Mount{mountCore: m.mountCore, as: &id}
}

// Identity returns the per-call identity of a view made by As, or nil.
func (m *Mount) Identity() *Identity { return m.as }

// jsonAttempt is Client.jsonAttempt with the view's identity, if any,
// added to the params as the member "as".
func (m *Mount) jsonAttempt(ctx context.Context, method string, params, result any) error {
	return m.c.jsonAttempt(ctx, method, m.withAs(params), result)
}

// jsonSend is Client.jsonSend with the view's identity.
func (m *Mount) jsonSend(ctx context.Context, method string, params any) (*jsonCall, error) {
	return m.c.jsonSend(ctx, method, m.withAs(params))
}

func (m *Mount) withAs(params any) any {
	if m.as == nil {
		return params
	}
	return paramsAs{params: params, as: m.as}
}

// paramsAs is params with the member "as" added.
type paramsAs struct {
	params any
	as     *wire.Identity
}

// MarshalJSON encodes the params object with "as" as its last member.
func (p paramsAs) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(p.params)
	if err != nil {
		return nil, err
	}
	as, err := json.Marshal(p.as)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("client: params %T is not a JSON object", p.params)
	}
	out := append([]byte(nil), b[:len(b)-1]...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"as":`...)
	out = append(out, as...)
	return append(out, '}'), nil
}

// mountState is what a (re)mount returned; it is replaced as a whole.
type mountState struct {
	wire.MountResult
}

// Mount mounts volume with the given identity.
func (c *Client) Mount(ctx context.Context, volume string, opts MountOptions) (*Mount, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	res, err := c.mountCall(ctx, volume, opts)
	if err != nil {
		return nil, err
	}
	m := &Mount{mountCore: &mountCore{c: c, volume: volume, opts: opts, remountMu: make(chan struct{}, 1)}}
	m.st.Store(&mountState{res})
	c.mu.Lock()
	c.mounts[m] = struct{}{}
	c.mu.Unlock()
	return m, nil
}

func (c *Client) mountCall(ctx context.Context, volume string, opts MountOptions) (wire.MountResult, error) {
	p := wire.MountParams{Volume: volume, User: opts.User, UID: opts.UID, GID: opts.GID, Groups: opts.Groups, Client: c.id}
	if opts.ReadOnly {
		p.Options = wire.MountReadOnly
	}
	var res wire.MountResult
	err := c.retryConn(ctx, wire.MethodMount, func(ctx context.Context) error {
		return c.jsonAttempt(ctx, wire.MethodMount, p, &res)
	})
	if err == nil && res.MaxIOSize == 0 {
		return res, protocolError(wire.MethodMount, errors.New("server returned max_io_size 0"))
	}
	return res, err
}

// actsAs returns the uid the server runs the mount's calls as, which owns
// its new inodes: the one mount reported (root_squash may have replaced
// uid 0), or, from an older server, the mount's own.
func (m *Mount) actsAs() uint32 {
	if m.as != nil {
		// A view's identity (a squashed root's anonymous uid is not
		// known here: such a retry reports EEXIST, the safe answer).
		return m.as.UID
	}
	if uid := m.st.Load().UID; uid != nil {
		return *uid
	}
	return m.opts.UID
}

// Volume returns the mounted volume's name.
func (m *Mount) Volume() string { return m.volume }

// RootInode returns the inode number of the volume's root directory.
func (m *Mount) RootInode() uint64 { return m.st.Load().RootInode }

// MaxIOSize returns the server's maximum size of one read or write
// request; Read and Write split larger buffers into several requests.
func (m *Mount) MaxIOSize() uint32 { return m.st.Load().MaxIOSize }

// MountID returns the server's current id for this mount. It changes when
// the Mount mounts again after a daemon restart.
func (m *Mount) MountID() uint64 { return m.st.Load().MountID }

// ReadOnly reports whether the mount is read-only: asked for
// (MountOptions.ReadOnly), or forced by the server for a principal with
// read-only access to the volume (users_ro, groups_ro; a server older
// than those does not report it).
func (m *Mount) ReadOnly() bool { return m.opts.ReadOnly || m.st.Load().ReadOnly }

// Unmount unmounts the volume. The Mount cannot be used afterwards (calls
// fail with EINVAL, reason bad_mount).
func (m *Mount) Unmount(ctx context.Context) error {
	if m.unmounted.Swap(true) {
		return badMountError(wire.MethodUnmount)
	}
	m.c.mu.Lock()
	delete(m.c.mounts, m)
	m.c.mu.Unlock()
	ctx, cancel := m.c.withTimeout(ctx)
	defer cancel()
	for n := 0; ; n++ {
		st := m.st.Load()
		err := m.c.jsonAttempt(ctx, wire.MethodUnmount, wire.MountOnly{MountID: st.MountID}, nil)
		var ce *connError
		switch {
		case err == nil:
			return nil
		case IsBadMount(err):
			// The daemon restarted: the mount is gone already.
			return nil
		case errors.As(err, &ce), errors.Is(err, syscall.EAGAIN):
			if err := m.c.sleep(ctx, wire.MethodUnmount, m.c.backoff(n)); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// unmountOnClose unmounts on a connection that is already open, with a
// short timeout, ignoring errors (Client.Close).
func (m *Mount) unmountOnClose() {
	if m.unmounted.Swap(true) {
		return
	}
	for _, s := range m.c.jsonSlots {
		jc, ok := s.peek()
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = jc.rpc.Call(ctx, wire.MethodUnmount, wire.MountOnly{MountID: m.st.Load().MountID}, nil)
		cancel()
		return
	}
}

func badMountError(op string) *Error {
	return &Error{Op: op, Errno: syscall.EINVAL, Reason: wire.ReasonBadMount, Msg: "not mounted"}
}

// maxBadMounts bounds how often one call mounts again.
const maxBadMounts = 8

// do runs attempt until it succeeds or fails for good, within the call
// timeout. It reconnects (through the pool) when a connection breaks,
// mounts again when the server says bad_mount, and backs off on EAGAIN.
// uncertain reports whether an earlier attempt was sent on a connection
// that then broke, so that it may have been executed.
func (m *Mount) do(ctx context.Context, op string, attempt func(context.Context, *mountState) error) (uncertain bool, err error) {
	ctx, cancel := m.c.withTimeout(ctx)
	defer cancel()
	return m.doCtx(ctx, op, attempt)
}

// doCtx is do with the call timeout already applied to ctx.
func (m *Mount) doCtx(ctx context.Context, op string, attempt func(context.Context, *mountState) error) (uncertain bool, err error) {
	return m.doOpts(ctx, op, callOpts{}, attempt)
}

// callOpts changes how doOpts retries.
type callOpts struct {
	// lock: the call is lock or flock, whose EAGAIN is its answer (a
	// conflict) unless its reason is busy (the server's in-flight limit,
	// backed off as for any call); an EAGAIN with reason grace is sent
	// again after graceRetryDelay.
	lock bool
}

// graceRetryDelay is how long a lock call refused for the server's grace
// period waits before it is sent again (a variable for the tests).
var graceRetryDelay = time.Second

// doOpts is doCtx with options.
func (m *Mount) doOpts(ctx context.Context, op string, o callOpts, attempt func(context.Context, *mountState) error) (uncertain bool, err error) {
	start := time.Now()
	defer func() { err = m.c.unreachable(err, start) }()
	badMounts := 0
	for n := 0; ; n++ {
		if m.c.closing.Load() {
			return uncertain, closedError(op)
		}
		if m.unmounted.Load() {
			return uncertain, badMountError(op)
		}
		st := m.st.Load()
		err := attempt(ctx, st)
		if err == nil {
			return uncertain, nil
		}
		var ce *connError
		switch {
		case errors.As(err, &ce):
			uncertain = uncertain || ce.uncertain
			if n > 0 {
				// The pool redials with its own back-off; this one is for
				// a server that accepts connections and drops them.
				if err := m.c.sleep(ctx, op, m.c.backoff(n-1)); err != nil {
					return uncertain, err
				}
			}
		case IsBadMount(err) && m.c.closing.Load():
			// Close unmounted it under our feet.
			return uncertain, closedError(op)
		case IsBadMount(err):
			badMounts++
			if badMounts > maxBadMounts || m.unmounted.Load() {
				return uncertain, err
			}
			if err := m.remount(ctx, op, st); err != nil {
				return uncertain, err
			}
		case o.lock && errors.Is(err, syscall.EAGAIN) && reasonOf(err) == wire.ReasonGrace:
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*graceRetryDelay {
				// No time for another attempt to be answered: report
				// the refusal (EAGAIN, reason grace).
				return uncertain, err
			}
			if serr := m.c.sleep(ctx, op, graceRetryDelay); serr != nil {
				if errors.Is(serr, context.DeadlineExceeded) {
					// The call timeout passed in the grace: report
					// the refusal (EAGAIN, reason grace).
					return uncertain, err
				}
				return uncertain, serr
			}
		case o.lock && errors.Is(err, syscall.EAGAIN) && reasonOf(err) != wire.ReasonBusy:
			return uncertain, err // a conflict
		case errors.Is(err, syscall.EAGAIN):
			if err := m.c.sleep(ctx, op, m.c.backoff(n)); err != nil {
				return uncertain, err
			}
		default:
			return uncertain, err
		}
	}
}

// remount mounts the volume again unless another caller already did since
// seen was current.
func (m *Mount) remount(ctx context.Context, op string, seen *mountState) error {
	select {
	case m.remountMu <- struct{}{}:
	case <-ctx.Done():
		return ctxError(op, ctx.Err())
	}
	defer func() { <-m.remountMu }()
	if m.st.Load() != seen {
		return nil
	}
	res, err := m.c.mountCall(ctx, m.volume, m.opts)
	if err != nil {
		return err
	}
	st := &mountState{res}
	m.st.Store(st)
	m.c.o.logger.Info("proxyfs: mounted again", "volume", m.volume, "old_mount_id", seen.MountID, "mount_id", res.MountID)
	// Open files again before the callers waiting for this remount go on.
	m.reopenHandles(ctx, st)
	return nil
}

// rpc makes a JSON-RPC call for the mount, with retries; params builds the
// params for a mount id.
func (m *Mount) rpc(ctx context.Context, method string, params func(id uint64) any, result any) (uncertain bool, err error) {
	return m.do(ctx, method, func(ctx context.Context, st *mountState) error {
		return m.jsonAttempt(ctx, method, params(st.MountID), result)
	})
}

// call is rpc for callers that need not know about uncertainty (idempotent
// calls).
func (m *Mount) call(ctx context.Context, method string, params func(id uint64) any, result any) error {
	_, err := m.rpc(ctx, method, params, result)
	return err
}
