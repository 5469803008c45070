package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// LockType is the type of a POSIX record lock (Mount.Lock).
type LockType uint8

// Lock types.
const (
	// LockUnlock releases a lock; in a LockInfo (or a nil one from
	// GetLk) it means that nothing conflicts.
	LockUnlock LockType = iota
	// LockRead is a shared lock (F_RDLCK): it needs a handle open for
	// reading.
	LockRead
	// LockWrite is an exclusive lock (F_WRLCK): it needs a handle open
	// for writing.
	LockWrite
)

// String returns the type's wire name: "unlock", "read" or "write".
func (t LockType) String() string {
	switch t {
	case LockUnlock:
		return wire.LockUnlock
	case LockRead:
		return wire.LockRead
	case LockWrite:
		return wire.LockWrite
	}
	return fmt.Sprintf("LockType(%d)", uint8(t))
}

// LockCmd is the command of Mount.Lock, as fcntl(2)'s.
type LockCmd uint8

// Lock commands.
const (
	// GetLk (F_GETLK) reports the first lock of another owner that would
	// conflict with the lock described, without taking it.
	GetLk LockCmd = iota + 1
	// SetLk (F_SETLK) takes or releases a lock, or fails at once with
	// EAGAIN when another owner's lock conflicts.
	SetLk
	// SetLkW (F_SETLKW) is SetLk that waits until the lock can be
	// granted.
	SetLkW
)

// String returns the command's wire name: "getlk", "setlk" or "setlkw".
func (c LockCmd) String() string {
	switch c {
	case GetLk:
		return wire.LockGetLk
	case SetLk:
		return wire.LockSetLk
	case SetLkW:
		return wire.LockSetLkW
	}
	return fmt.Sprintf("LockCmd(%d)", uint8(c))
}

// FlockOp is the operation of Mount.Flock, as flock(2)'s.
type FlockOp uint8

// flock operations.
const (
	// FlockUnlock (LOCK_UN) releases the handle's flock lock.
	FlockUnlock FlockOp = iota
	// FlockShared (LOCK_SH) takes a shared lock, or converts the held
	// one.
	FlockShared
	// FlockExclusive (LOCK_EX) takes an exclusive lock, or converts the
	// held one.
	FlockExclusive
)

// String returns the operation's wire name: "unlock", "shared" or
// "exclusive".
func (o FlockOp) String() string {
	switch o {
	case FlockUnlock:
		return wire.FlockUnlock
	case FlockShared:
		return wire.FlockShared
	case FlockExclusive:
		return wire.FlockExclusive
	}
	return fmt.Sprintf("FlockOp(%d)", uint8(o))
}

// LockInfo is a lock another owner holds, as GetLk reports it.
type LockInfo struct {
	// Type is LockRead or LockWrite.
	Type LockType
	// Start is the lock's first byte.
	Start int64
	// Len is its length; 0 means to the end of the file.
	Len int64
	// Owner is its owner string (never its mount or handle).
	Owner string
}

// lockReq is one lock or flock request through a handle.
type lockReq struct {
	method   string // wire.MethodLock or wire.MethodFlock
	cmd      LockCmd
	typ      LockType
	start    int64
	length   int64
	owner    string
	op       FlockOp
	nonblock bool
}

// waits reports whether the request may wait for the lock.
func (r *lockReq) waits() bool {
	if r.method == wire.MethodFlock {
		return !r.nonblock && r.op != FlockUnlock
	}
	return r.cmd == SetLkW && r.typ != LockUnlock
}

// params returns the request's params for a server handle.
func (r *lockReq) params(mountID, fh uint64, reclaim bool) any {
	if r.method == wire.MethodFlock {
		return wire.FlockParams{MountID: mountID, Fh: fh, Op: r.op.String(), NonBlock: r.nonblock, Reclaim: reclaim}
	}
	return wire.LockParams{MountID: mountID, Fh: fh, Cmd: r.cmd.String(), Type: r.typ.String(),
		Start: r.start, Len: r.length, Owner: r.owner, Reclaim: reclaim}
}

// cancelOwner is the owner whose waits lock_cancel ends for r ("" for
// flock).
func (r *lockReq) cancelOwner() string {
	if r.method == wire.MethodFlock {
		return ""
	}
	return r.owner
}

// Lock takes, releases or tests a POSIX record lock (fcntl(2) F_SETLK,
// F_SETLKW, F_GETLK) on the file of h, which must be a handle of m
// (Mount.Open). The lock covers the bytes [start, start+length); length 0
// runs to the end of the file, however large it grows; a negative length
// covers [start+length, start), as fcntl's l_len does. owner tells the
// caller's lockers apart (at most 64 bytes; a FUSE lock_owner, an SMB lock
// context, as text): locks of one owner through one handle never conflict
// with each other, and the locks of two handles are two owners, whatever
// their owner strings (Linux's open file description locks). A LockRead
// lock needs h open for reading and a LockWrite lock h open for writing
// (EBADF otherwise).
//
// With SetLk, Lock takes a lock of type typ (or releases the owner's
// locks over the range with LockUnlock, which always succeeds) or fails
// with EAGAIN when another owner's lock conflicts. Within one owner a new
// lock replaces what it held over those bytes, as fcntl(2) says. SetLkW
// waits until the lock is granted; it fails with EDEADLK when waiting
// would deadlock (owners waiting for each other, on any files), with
// EINTR when LockCancel ends the wait, with EBADF when h is closed
// meanwhile. GetLk returns the conflicting lock with the lowest start, or
// nil when none conflicts; it needs no particular open mode. SetLk and
// SetLkW return a nil *LockInfo.
//
// The wait of SetLkW is not bounded by the call timeout (WithCallTimeout),
// only by ctx. When ctx ends while Lock waits, Lock sends LockCancel for
// the owner (which ends every wait of that owner through h; again every
// 200 ms while no answer came, since a cancel that overtook the wait ends
// nothing) and reads the wait's answer: if the lock was granted before the cancellation took
// effect, Lock returns nil and the lock is held (it is not undone: an
// unlock would also drop what the owner held there before); otherwise it
// returns ctx's error (ETIMEDOUT or EINTR, matching
// context.DeadlineExceeded or context.Canceled). If the answer does not
// come within the call timeout after the cancellation, Lock returns
// ctx's error and the outcome is unknown.
//
// Right after a daemon restart the server grants only reclaims, for its
// reclaim_grace; a SetLk refused for it (EAGAIN with Reason
// wire.ReasonGrace) is sent again every second until it is answered
// otherwise or the call timeout would pass before another attempt is
// answered (the grace refusal is returned then); SetLkW waits for the
// grace to end.
//
// Like any call, a SetLk that fails with ETIMEDOUT (or EINTR for a
// canceled ctx) while its request was on the wire may have been granted
// on the server; the Mount then does not know the lock, which the server
// holds until an unlock over it or the handle's close.
//
// The Mount remembers the locks h holds, as the server holds them, and
// takes them again after a daemon restart (see Handle and
// Client.LostLocks). Concurrent Lock calls of one owner over overlapping
// bytes are applied by the server in an order the client cannot know, so
// its record of them may then differ from the server's; make them one at
// a time, as fcntl(2) callers do.
func (m *Mount) Lock(ctx context.Context, h *Handle, cmd LockCmd, typ LockType, start, length int64, owner string) (*LockInfo, error) {
	op := wire.MethodLock
	if cmd < GetLk || cmd > SetLkW || typ > LockWrite {
		return nil, &Error{Op: op, Errno: syscall.EINVAL, Msg: fmt.Sprintf("bad lock command %v or type %v", cmd, typ)}
	}
	if length < 0 {
		start, length = start+length, -length
	}
	if start < 0 {
		return nil, &Error{Op: op, Errno: syscall.EINVAL, Msg: "lock range starts before offset 0"}
	}
	r := &lockReq{method: op, cmd: cmd, typ: typ, start: start, length: length, owner: owner}
	var res wire.LockResult
	if err := m.lockCall(ctx, h, r, &res); err != nil {
		return nil, err
	}
	if cmd != GetLk || res.Type == "" || res.Type == wire.LockUnlock {
		return nil, nil
	}
	info := &LockInfo{}
	switch res.Type {
	case wire.LockRead:
		info.Type = LockRead
	case wire.LockWrite:
		info.Type = LockWrite
	default:
		return nil, protocolError(op, fmt.Errorf("getlk: unknown lock type %q", res.Type))
	}
	if res.Start != nil {
		info.Start = *res.Start
	}
	if res.Len != nil {
		info.Len = *res.Len
	}
	if res.Owner != nil {
		info.Owner = *res.Owner
	}
	return info, nil
}

// Flock takes, converts or releases the whole-file flock(2) lock of h, a
// handle of m (Mount.Open): one lock per handle, shared or exclusive,
// independent of the POSIX locks of Lock and of h's open mode. Taking the
// other type converts the held lock. With nonblock, a lock (or a
// conversion) that another handle's lock blocks fails with EAGAIN
// (EWOULDBLOCK), keeping the lock held before. Without nonblock Flock
// waits until the lock is granted, like Lock with SetLkW (not bounded by
// the call timeout; on ctx's end it cancels the wait and reports whether
// the lock was granted; LockCancel with owner "" ends the wait with
// EINTR). A conversion that has to wait first drops the lock held before,
// as flock(2) does, so a blocking conversion that fails (EINTR, ctx) leaves
// h without a flock lock: when the server had not dropped it yet, Flock
// releases it, so that the outcome never depends on timing. Grace after a
// restart and the record kept for reclaims are as for Lock.
func (m *Mount) Flock(ctx context.Context, h *Handle, op FlockOp, nonblock bool) error {
	if op > FlockExclusive {
		return &Error{Op: wire.MethodFlock, Errno: syscall.EINVAL, Msg: fmt.Sprintf("bad flock operation %v", op)}
	}
	r := &lockReq{method: wire.MethodFlock, op: op, nonblock: nonblock}
	return m.lockCall(ctx, h, r, nil)
}

// LockCancel ends every wait of owner through h (Lock with SetLkW, on any
// of its ranges; owner "" also ends a waiting Flock of h): those calls
// fail with EINTR. It returns how many waits it ended. A wait the server
// granted just before is not undone. LockCancel is bounded by the call
// timeout and sent again if its connection breaks (a retry may also end
// a wait begun after the first attempt).
func (m *Mount) LockCancel(ctx context.Context, h *Handle, owner string) (int, error) {
	op := wire.MethodLockCancel
	if err := m.checkHandle(op, h); err != nil {
		return 0, err
	}
	var res wire.LockCancelResult
	_, err := m.do(ctx, op, func(ctx context.Context, _ *mountState) error {
		st, fh, err := h.server(op)
		if err != nil {
			return err
		}
		return m.jsonAttempt(ctx, op, wire.LockCancelParams{MountID: st.MountID, Fh: fh, Owner: owner}, &res)
	})
	return res.Cancelled, err
}

// LostLocks returns how many locks the Client's Mounts lost: locks (each
// disjoint range of Lock, each flock lock) that could not be taken again
// after a daemon restart (the grace had ended, another client held a
// conflicting lock, the handle could not be opened again, or anything
// else). A lost lock is forgotten: its owner no longer holds it, and
// another client may have taken it and changed the data it protected.
func (c *Client) LostLocks() uint64 { return c.lostLocks.Load() }

// checkHandle returns EBADF unless h is a handle of m.
func (m *Mount) checkHandle(op string, h *Handle) error {
	if h == nil || h.m.mountCore != m.mountCore { // views (As) share the mount
		return &Error{Op: op, Errno: syscall.EBADF, Msg: "not a handle of this mount"}
	}
	return nil
}

// server returns the server mount and handle h is open with, or EBADF if
// h is closed or was lost.
func (h *Handle) server(op string) (*mountState, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, 0, &Error{Op: op, Errno: syscall.EBADF, Msg: "handle closed"}
	case h.lost != nil:
		return nil, 0, &Error{Op: op, Errno: syscall.EBADF, Msg: "the file was lost when the mount was made again: " + h.lost.Error(), cause: h.lost}
	}
	return h.st, h.fh, nil
}

// lockCall runs a lock or flock request through h, with retries: calls
// that do not wait within the call timeout, waiting calls until they are
// answered or ctx ends (doWait).
func (m *Mount) lockCall(ctx context.Context, h *Handle, r *lockReq, res any) error {
	if err := m.checkHandle(r.method, h); err != nil {
		return err
	}
	if r.waits() {
		return m.doWait(ctx, r.method, func(sctx context.Context, _ *mountState) error {
			return m.lockAttempt(sctx, ctx, h, r, res)
		})
	}
	_, err := m.doLock(ctx, r.method, func(ctx context.Context, _ *mountState) error {
		return m.lockAttempt(ctx, nil, h, r, res)
	})
	return err
}

// doLock is do (with the call timeout) with the retry rules of the lock
// calls.
func (m *Mount) doLock(ctx context.Context, op string, attempt func(context.Context, *mountState) error) (bool, error) {
	ctx, cancel := m.c.withTimeout(ctx)
	defer cancel()
	return m.doOpts(ctx, op, callOpts{lock: true}, attempt)
}

// waitBroken is what a waiting attempt returns when its connection broke
// after the request was sent: doWait sends it again with a fresh call
// timeout.
type waitBroken struct{ err error }

func (e *waitBroken) Error() string { return e.err.Error() }

// doWait runs the attempt of a call that waits (SetLkW, a blocking Flock)
// until it is answered or ctx ends. Sending it (reconnects, remounts,
// retries) is bounded by the call timeout, as with do, but the wait is
// not: the timeout runs again from each break of a connection on which
// the call was sent, after a back-off. attempt gets the context to send
// with.
func (m *Mount) doWait(ctx context.Context, op string, attempt func(context.Context, *mountState) error) error {
	for n := 0; ; n++ {
		tctx, cancel := m.c.withTimeout(ctx)
		_, err := m.doOpts(tctx, op, callOpts{lock: true}, func(ctx context.Context, st *mountState) error {
			err := attempt(ctx, st)
			var ce *connError
			if errors.As(err, &ce) && ce.uncertain {
				return &waitBroken{err}
			}
			return err
		})
		cancel()
		var wb *waitBroken
		if !errors.As(err, &wb) {
			return err
		}
		if err := m.c.sleep(ctx, op, m.c.backoff(n)); err != nil {
			return err
		}
	}
}

// lockAttempt makes one attempt of r through h: it sends the request with
// sctx and, if wctx is not nil (a waiting call), waits for its answer
// until wctx ends, then cancels the wait (waitAnswer). On success it
// records what the handle now holds.
func (m *Mount) lockAttempt(sctx, wctx context.Context, h *Handle, r *lockReq, res any) error {
	st, fh, err := h.server(r.method)
	if err != nil {
		return err
	}
	call, err := m.jsonSend(sctx, r.method, r.params(st.MountID, fh, false))
	if err != nil {
		return err
	}
	var gaveUp bool
	if wctx == nil {
		err = call.wait(sctx, res)
	} else {
		err, gaveUp = m.waitAnswer(wctx, call, st, fh, r, res)
	}
	var se *Error
	switch {
	case err == nil:
		if r.method == wire.MethodFlock || r.cmd != GetLk {
			h.record(sctx, st, r)
		}
		return nil
	case r.method == wire.MethodFlock && r.waits() && errors.As(err, &se) && se.Errno == syscall.EINTR && se.Reason == "":
		// The server ended the wait: a conversion has lost the lock held
		// before (or is about to), as flock(2) says.
		h.flockInterrupted(sctx, st, r)
	}
	if gaveUp {
		switch {
		case errors.As(err, &se) && se.Errno == syscall.EINTR && se.Reason == "":
			// Our lock_cancel ended the wait: nothing was granted.
			return ctxError(r.method, wctx.Err())
		case errors.As(err, &se) && se.Reason == ReasonClosed:
			return err
		case !serverAnswer(err):
			// No answer (the connection broke, or none came in time):
			// the outcome is unknown.
			m.c.o.logger.Warn("proxyfs: a cancelled lock wait got no answer", "op", r.method, "owner", r.owner, "err", err)
			return ctxError(r.method, wctx.Err())
		}
	}
	return err
}

// cancelResend is how long a client that gave up on a wait waits for its
// answer before it sends lock_cancel again: a cancel that ran before the
// wait began ends nothing (PROTOCOL.md section 4, "Waiting").
const cancelResend = 200 * time.Millisecond

// waitAnswer waits for the answer to a waiting call until wctx ends; it
// then sends lock_cancel for the call's owner (again every cancelResend)
// and reads the answer still, for at most the call timeout. gaveUp
// reports that wctx ended first.
func (m *Mount) waitAnswer(wctx context.Context, call *jsonCall, st *mountState, fh uint64, r *lockReq, res any) (err error, gaveUp bool) {
	c := m.c
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	gave := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-rctx.Done():
			return
		case <-wctx.Done():
		}
		close(gave)
		// The answer should follow at once; do not wait for it forever.
		cctx, cancel := c.withTimeout(rctx)
		defer cancel()
		defer stop()
		p := wire.LockCancelParams{MountID: st.MountID, Fh: fh, Owner: r.cancelOwner()}
		for {
			var cres wire.LockCancelResult
			err := c.retryConn(cctx, wire.MethodLockCancel, func(ctx context.Context) error {
				return c.jsonAttempt(ctx, wire.MethodLockCancel, p, &cres)
			})
			if err != nil && rctx.Err() == nil {
				c.o.logger.Debug("proxyfs: lock_cancel failed", "op", r.method, "err", err)
			}
			if c.sleep(cctx, wire.MethodLockCancel, cancelResend) != nil {
				return
			}
		}
	}()
	err = call.wait(rctx, res)
	stop()
	wg.Wait()
	select {
	case <-gave:
		gaveUp = true
	default:
	}
	return err, gaveUp
}

// record notes in h's record of its locks the change r made on the
// server mount st. If h has been opened again on another mount since (a
// remount raced with the call, whose answer came from the daemon before
// it restarted), r is replayed on the new mount, as a reclaim, so that
// the record stays what the server holds; a lock that cannot be replayed
// is lost.
func (h *Handle) record(ctx context.Context, st *mountState, r *lockReq) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.lost != nil {
		return
	}
	if h.st != st {
		rctx, cancel := h.m.c.withTimeout(context.WithoutCancel(ctx))
		err := h.m.resendOn(rctx, h.st, h.fh, r)
		cancel()
		if err != nil {
			if r.op != FlockUnlock && (r.method == wire.MethodFlock || r.typ != LockUnlock) {
				h.m.lostLock(h, r, err, 1)
				return
			}
			// An unlock that could not be replayed: the server still
			// holds what the reclaim took; the record is what the caller
			// asked for.
		}
	}
	h.apply(r)
}

// apply changes h's record of its locks as r did. Called with h.mu held.
func (h *Handle) apply(r *lockReq) {
	if r.method == wire.MethodFlock {
		h.flock = r.op
		return
	}
	s, e := lockSpan(r.start, r.length)
	rs := setRange(h.posix[r.owner], r.typ, s, e)
	if rs == nil {
		delete(h.posix, r.owner)
		return
	}
	if h.posix == nil {
		h.posix = map[string][]lockRange{}
	}
	h.posix[r.owner] = rs
}

// flockInterrupted handles a blocking flock that the server ended with
// EINTR: if it was a conversion, the server dropped the lock held before
// or (if it ended the wait before) still holds it; Flock releases it in
// the second case, so that h holds no flock lock either way.
func (h *Handle) flockInterrupted(ctx context.Context, st *mountState, r *lockReq) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.lost != nil || h.flock == FlockUnlock || h.flock == r.op {
		return
	}
	rctx, cancel := h.m.c.withTimeout(context.WithoutCancel(ctx))
	defer cancel()
	un := &lockReq{method: wire.MethodFlock, op: FlockUnlock}
	if err := h.m.resendOn(rctx, h.st, h.fh, un); err != nil {
		h.m.c.o.logger.Warn("proxyfs: could not release a flock lock after an interrupted conversion", "ino", h.ino, "err", err)
	}
	h.flock = FlockUnlock
}

// serverAnswer reports whether err is an answer of the server (rather
// than a broken connection, a timeout, a closed client).
func serverAnswer(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Reason {
	case ReasonTimeout, ReasonCanceled, ReasonClosed, ReasonConnection, ReasonProtocol:
		return false
	}
	return true
}

// resendOn sends r once to server handle fh of mount st, without
// waiting (setlk, flock with nonblock) and with reclaim unless it is an
// unlock, sending it again only when its connection breaks.
func (m *Mount) resendOn(ctx context.Context, st *mountState, fh uint64, r *lockReq) error {
	rr := *r
	reclaim := true
	switch {
	case rr.method == wire.MethodFlock && rr.op == FlockUnlock, rr.method == wire.MethodLock && rr.typ == LockUnlock:
		reclaim = false
	case rr.method == wire.MethodFlock:
		rr.nonblock = true
	default:
		rr.cmd = SetLk
	}
	p := rr.params(st.MountID, fh, reclaim)
	for n := 0; ; n++ {
		err := m.jsonAttempt(ctx, rr.method, p, nil)
		var ce *connError
		if !errors.As(err, &ce) {
			return err
		}
		if err := m.c.sleep(ctx, rr.method, m.c.backoff(n)); err != nil {
			return err
		}
	}
}

// reclaimLocks takes again, with reclaim, every lock h held, on the
// server handle it was just opened again with (on mount st). A lock that
// cannot be taken is lost: forgotten and counted. Called by reopen, with
// h.mu held.
func (h *Handle) reclaimLocks(ctx context.Context, st *mountState) {
	if len(h.posix) == 0 && h.flock == FlockUnlock {
		return
	}
	m := h.m
	// The reclaims go on when the call that noticed the restart is
	// cancelled: they are for every user of the handle.
	ctx, cancel := m.c.withTimeout(context.WithoutCancel(ctx))
	defer cancel()
	owners := make([]string, 0, len(h.posix))
	for o := range h.posix {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	for _, o := range owners {
		var kept []lockRange
		for _, lr := range h.posix[o] {
			start, length := lr.startLen()
			r := &lockReq{method: wire.MethodLock, cmd: SetLk, typ: lr.typ, start: start, length: length, owner: o}
			if err := m.resendOn(ctx, st, h.fh, r); err != nil {
				m.lostLock(h, r, err, 1)
				continue
			}
			kept = append(kept, lr)
		}
		if kept == nil {
			delete(h.posix, o)
		} else {
			h.posix[o] = kept
		}
	}
	if h.flock != FlockUnlock {
		r := &lockReq{method: wire.MethodFlock, op: h.flock, nonblock: true}
		if err := m.resendOn(ctx, st, h.fh, r); err != nil {
			m.lostLock(h, r, err, 1)
			h.flock = FlockUnlock
		}
	}
}

// forgetLocks forgets every lock h holds; lost counts them as lost, with
// err as the cause. Called with h.mu held.
func (h *Handle) forgetLocks(lost bool, err error) {
	if lost {
		n := 0
		for _, rs := range h.posix {
			n += len(rs)
		}
		if h.flock != FlockUnlock {
			n++
		}
		if n > 0 {
			h.m.lostLock(h, nil, err, n)
		}
	}
	h.posix = nil
	h.flock = FlockUnlock
}

// lostLock counts n locks of h as lost (r, if not nil, is the one) and
// logs it.
func (m *Mount) lostLock(h *Handle, r *lockReq, err error, n int) {
	m.c.lostLocks.Add(uint64(n))
	args := []any{"ino", h.ino, "locks", n, "err", err}
	if r != nil {
		args = append(args, "op", r.method, "owner", r.owner, "type", r.typ.String(), "flock", r.op.String(),
			"start", r.start, "len", r.length)
	}
	m.c.o.logger.Warn("proxyfs: lock lost after the daemon restarted", args...)
}
