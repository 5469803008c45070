package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// lockFile creates path and opens it on each of the mounts, returning the
// handles in order.
func lockFile(t *testing.T, rc *rawConn, path string, flags int, mounts ...uint64) []uint64 {
	t.Helper()
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": mounts[0], "path": path, "mode": 0o644}, &f)
	var fhs []uint64
	for _, m := range mounts {
		var o wire.OpenResult
		rc.ok(wire.MethodOpen, obj{"mount_id": m, "inode": f.Inode, "flags": flags}, &o)
		fhs = append(fhs, o.Fh)
	}
	return fhs
}

func lk(m, fh uint64, cmd, typ string, start, length int64, owner string) obj {
	return obj{"mount_id": m, "fh": fh, "cmd": cmd, "type": typ, "start": start, "len": length, "owner": owner}
}

// waitReply reads the reply to request id, failing if it does not come.
func waitReply(t *testing.T, rc *rawConn, id int) reply {
	t.Helper()
	r := rc.recv()
	if string(r.ID) != strconv.Itoa(id) {
		t.Fatalf("reply to %s, want %d", r.ID, id)
	}
	return r
}

// noReplyWithin checks that nothing arrives on rc within d.
func noReplyWithin(t *testing.T, rc *rawConn, d time.Duration) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(d))
	if _, err := rc.r.Peek(1); err == nil {
		t.Fatalf("a reply arrived while a call should wait")
	}
	rc.c.SetReadDeadline(time.Time{})
}

// POSIX locks between two mounts on the wire: conflicts, getlk, waits
// woken by an unlock, cancel, EDEADLK, the open mode rule, bad params,
// release at close and at unmount.
func TestLocksWire(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Metrics: true})
	a := dial(t, "tcp", d.TCPAddr)
	b := dial(t, "tcp", d.TCPAddr)
	ma := a.mount("default", 0).MountID
	mb := b.mount("default", 0).MountID
	fh := lockFile(t, a, "/f", 2, ma)
	fa := fh[0]
	var o wire.OpenResult
	var st wire.StatResult
	a.ok(wire.MethodGetStatPath, obj{"mount_id": ma, "path": "/f"}, &st)
	b.ok(wire.MethodOpen, obj{"mount_id": mb, "inode": st.Stat.Ino, "flags": 2}, &o)
	fb := o.Fh

	a.ok(wire.MethodLock, lk(ma, fa, "setlk", "write", 0, 100, "smb:a"), nil)
	// The same owner converts its own lock; another conflicts.
	a.ok(wire.MethodLock, lk(ma, fa, "setlk", "read", 0, 10, "smb:a"), nil)
	b.fails(wire.MethodLock, lk(mb, fb, "setlk", "read", 50, 0, "fuse:1"), "EAGAIN", 11)
	b.ok(wire.MethodLock, lk(mb, fb, "setlk", "read", 0, 10, "fuse:1"), nil) // read over read
	var r wire.LockResult
	b.ok(wire.MethodLock, lk(mb, fb, "getlk", "read", 5, 0, "fuse:1"), &r)
	if r.Type != "write" || *r.Start != 10 || *r.Len != 90 || *r.Owner != "smb:a" {
		t.Fatalf("getlk: %+v", r)
	}
	r = wire.LockResult{}
	b.ok(wire.MethodLock, lk(mb, fb, "getlk", "read", 200, 0, "fuse:1"), &r)
	if r.Type != "unlock" || r.Start != nil || r.Owner != nil {
		t.Fatalf("getlk without conflict: %+v", r)
	}
	// Two handles of one mount are two owners even with one owner string.
	fa2 := lockFile(t, a, "/g", 2, ma, ma)
	a.ok(wire.MethodLock, lk(ma, fa2[0], "setlk", "write", 0, 0, "x"), nil)
	a.fails(wire.MethodLock, lk(ma, fa2[1], "setlk", "write", 0, 0, "x"), "EAGAIN", 11)

	// setlkw waits, and the unlock wakes it.
	id := b.send(wire.MethodLock, lk(mb, fb, "setlkw", "write", 50, 10, "fuse:1"))
	noReplyWithin(t, b, 200*time.Millisecond)
	a.ok(wire.MethodLock, lk(ma, fa, "setlk", "unlock", 0, 0, "smb:a"), nil)
	if rep := waitReply(t, b, id); rep.Error != nil {
		t.Fatalf("setlkw after unlock: %+v", rep.Error)
	}

	// lock_cancel ends a wait with EINTR (the cancel's own reply may come
	// first or second).
	id = a.send(wire.MethodLock, lk(ma, fa, "setlkw", "read", 55, 1, "smb:a"))
	noReplyWithin(t, a, 200*time.Millisecond)
	cid := a.send(wire.MethodLockCancel, obj{"mount_id": ma, "fh": fa, "owner": "smb:a"})
	for range 2 {
		rep := a.recv()
		switch string(rep.ID) {
		case strconv.Itoa(id):
			if rep.Error == nil || rep.Error.Data.Name != "EINTR" {
				t.Fatalf("cancelled wait: %+v", rep)
			}
		case strconv.Itoa(cid):
			var c wire.LockCancelResult
			if err := json.Unmarshal(rep.Result, &c); err != nil || c.Cancelled != 1 {
				t.Fatalf("lock_cancel: %s %v", rep.Result, err)
			}
		default:
			t.Fatalf("unexpected reply %s", rep.ID)
		}
	}

	// b waits for /h, which a holds, and gets it when a unlocks.
	hs := lockFile(t, a, "/h", 2, ma, mb)
	a.ok(wire.MethodLock, lk(ma, hs[0], "setlk", "write", 0, 0, "smb:a"), nil)
	id = b.send(wire.MethodLock, lk(mb, hs[1], "setlkw", "write", 0, 0, "fuse:1"))
	noReplyWithin(t, b, 200*time.Millisecond)
	a.ok(wire.MethodLock, lk(ma, hs[0], "setlk", "unlock", 0, 0, "smb:a"), nil)
	if rep := waitReply(t, b, id); rep.Error != nil {
		t.Fatalf("setlkw on /h: %+v", rep.Error)
	}
	// EDEADLK: owner p holds [0,10) of /k, q holds [10,20) and waits for
	// [0,10); p's wait for [10,20) would close the cycle.
	k := lockFile(t, a, "/k", 2, ma, mb)
	a.ok(wire.MethodLock, lk(ma, k[0], "setlk", "write", 0, 10, "p"), nil)
	b.ok(wire.MethodLock, lk(mb, k[1], "setlk", "write", 10, 10, "q"), nil)
	id = b.send(wire.MethodLock, lk(mb, k[1], "setlkw", "write", 0, 10, "q"))
	noReplyWithin(t, b, 200*time.Millisecond)
	a.fails(wire.MethodLock, lk(ma, k[0], "setlkw", "write", 10, 10, "p"), "EDEADLK", 35)
	// Closing a's handle releases its lock: b's wait is granted.
	a.ok(wire.MethodClose, obj{"mount_id": ma, "fh": k[0]}, nil)
	if rep := waitReply(t, b, id); rep.Error != nil {
		t.Fatalf("setlkw after close: %+v", rep.Error)
	}

	// The open mode: a write lock needs write access, a read lock read.
	ro := lockFile(t, a, "/ro", 0, ma)[0]
	a.fails(wire.MethodLock, lk(ma, ro, "setlk", "write", 0, 1, ""), "EBADF", 9)
	a.ok(wire.MethodLock, lk(ma, ro, "setlk", "read", 0, 1, ""), nil)
	wo := lockFile(t, a, "/wo", 1, ma)[0]
	a.fails(wire.MethodLock, lk(ma, wo, "setlk", "read", 0, 1, ""), "EBADF", 9)
	a.ok(wire.MethodLock, lk(ma, wo, "getlk", "read", 0, 1, ""), &r)

	// Bad params.
	a.fails(wire.MethodLock, lk(ma, 4242, "setlk", "read", 0, 1, ""), "EBADF", 9)
	a.fails(wire.MethodLock, lk(mb, fa, "setlk", "read", 0, 1, ""), "EBADF", 9) // a's handle, b's mount
	a.fails(wire.MethodLock, lk(ma, fa, "setlk", "read", -1, 1, ""), "EINVAL", 22)
	a.fails(wire.MethodLock, lk(ma, fa, "setlk", "read", 0, -1, ""), "EINVAL", 22)
	a.fails(wire.MethodLock, lk(ma, fa, "setlk", "read", 1<<62, 1<<62+1, ""), "EINVAL", 22)
	a.fails(wire.MethodLock, lk(ma, fa, "setlk", "bogus", 0, 1, ""), "EINVAL", 22)
	a.fails(wire.MethodLock, lk(ma, fa, "lock", "read", 0, 1, ""), "EINVAL", 22)
	a.fails(wire.MethodLock, lk(ma, fa, "getlk", "unlock", 0, 1, ""), "EINVAL", 22)
	long := string(make([]byte, 65))
	a.fails(wire.MethodLock, lk(ma, fa, "setlk", "read", 0, 1, long), "EINVAL", 22)
	a.fails(wire.MethodLock, obj{"mount_id": ma, "fh": fa, "cmd": "setlk"}, "EINVAL", -32602)
	a.fails(wire.MethodFlock, obj{"mount_id": ma, "fh": fa, "op": "both"}, "EINVAL", 22)
	a.fails(wire.MethodLockCancel, obj{"mount_id": ma, "fh": 4242}, "EBADF", 9)

	// Unmount releases: b holds /f [50,60) and /h; after b unmounts, a
	// gets them.
	a.fails(wire.MethodLock, lk(ma, fa, "setlk", "write", 0, 0, "smb:a"), "EAGAIN", 11)
	b.ok(wire.MethodUnmount, obj{"mount_id": mb}, nil)
	a.ok(wire.MethodLock, lk(ma, fa, "setlk", "write", 0, 0, "smb:a"), nil)
	a.ok(wire.MethodLock, lk(ma, hs[0], "setlk", "write", 0, 0, "smb:a"), nil)

	if m := scrape(t, d); m["proxyfs_requests_total{channel=json,method=lock}"] == 0 {
		t.Errorf("lock not counted under its own method label")
	}
	d.Check(t)
}

// flock on the wire: shared and exclusive, nonblock, a blocking wait
// woken by the holder's close, independence from POSIX locks.
func TestFlockWire(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	a := dial(t, "tcp", d.TCPAddr)
	b := dial(t, "tcp", d.TCPAddr)
	ma := a.mount("default", 0).MountID
	mb := b.mount("default", wire.MountReadOnly).MountID
	fh := lockFile(t, a, "/f", 0, ma, mb)
	fl := func(m, fh uint64, op string, nb bool) obj {
		return obj{"mount_id": m, "fh": fh, "op": op, "nonblock": nb}
	}
	a.ok(wire.MethodFlock, fl(ma, fh[0], "shared", true), nil)
	b.ok(wire.MethodFlock, fl(mb, fh[1], "shared", true), nil) // flock ignores the open mode; read-only mounts lock
	a.fails(wire.MethodFlock, fl(ma, fh[0], "exclusive", true), "EAGAIN", 11)
	b.ok(wire.MethodFlock, fl(mb, fh[1], "unlock", false), nil)
	a.ok(wire.MethodFlock, fl(ma, fh[0], "exclusive", true), nil)
	// POSIX locks do not see flock locks.
	b.ok(wire.MethodLock, lk(mb, fh[1], "setlk", "read", 0, 0, ""), nil)
	id := b.send(wire.MethodFlock, fl(mb, fh[1], "shared", false))
	noReplyWithin(t, b, 200*time.Millisecond)
	a.ok(wire.MethodClose, obj{"mount_id": ma, "fh": fh[0]}, nil)
	if rep := waitReply(t, b, id); rep.Error != nil {
		t.Fatalf("flock wait after close: %+v", rep.Error)
	}
	d.Check(t)
}

// A wait ends when its connection closes, without a reply, and leaves no
// waiter behind; the mount (held by another connection) keeps its locks.
// A lock call on a handle closed meanwhile leaves no lock.
func TestLockWaitConnectionClosed(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	a := dial(t, "tcp", d.TCPAddr)
	ma := a.mount("default", 0).MountID
	fh := lockFile(t, a, "/f", 2, ma, ma)
	a.ok(wire.MethodLock, lk(ma, fh[0], "setlk", "write", 0, 0, "a"), nil)
	w := dial(t, "tcp", d.TCPAddr)
	w.send(wire.MethodLock, lk(ma, fh[1], "setlkw", "write", 0, 0, "b"))
	time.Sleep(200 * time.Millisecond)
	w.c.Close()
	time.Sleep(200 * time.Millisecond)
	// The wait is gone: after the unlock, nothing holds the file.
	a.ok(wire.MethodLock, lk(ma, fh[0], "setlk", "unlock", 0, 0, "a"), nil)
	var r wire.LockResult
	a.ok(wire.MethodLock, lk(ma, fh[0], "getlk", "write", 0, 0, "a"), &r)
	if r.Type != "unlock" {
		t.Fatalf("a cancelled wait took the lock: %+v", r)
	}
	d.Check(t)
}

// After a restart, a volume on which locks were held is in its grace
// period: locks without reclaim get EAGAIN with reason "grace", reclaims
// are granted; after it, reclaims get ENOLCK with reason "no_grace". A
// volume with no lock held when the daemon stopped has no grace.
func TestLockGrace(t *testing.T) {
	grace := 2 * time.Second
	d := daemontest.Start(t, daemontest.Options{ReclaimGrace: grace})
	a := dial(t, "tcp", d.TCPAddr)
	ma := a.mount("default", 0).MountID
	fh := lockFile(t, a, "/f", 2, ma)[0]
	a.ok(wire.MethodLock, lk(ma, fh, "setlk", "write", 0, 0, "a"), nil)
	var st wire.StatResult
	a.ok(wire.MethodGetStatPath, obj{"mount_id": ma, "path": "/f"}, &st)
	d.Kill()
	d.Restart()
	started := time.Now()

	a = dial(t, "tcp", d.TCPAddr)
	b := dial(t, "tcp", d.TCPAddr)
	ma = a.mount("default", 0).MountID
	mb := b.mount("default", 0).MountID
	var oa, ob wire.OpenResult
	a.ok(wire.MethodOpen, obj{"mount_id": ma, "inode": st.Stat.Ino, "flags": 2, "reclaim": true}, &oa)
	b.ok(wire.MethodOpen, obj{"mount_id": mb, "inode": st.Stat.Ino, "flags": 2}, &ob)
	e := b.fails(wire.MethodLock, lk(mb, ob.Fh, "setlk", "read", 0, 1, "b"), "EAGAIN", 11)
	if e.Data.Reason != wire.ReasonGrace {
		t.Fatalf("lock in the grace: %+v", e.Data)
	}
	rl := lk(ma, oa.Fh, "setlk", "write", 0, 0, "a")
	rl["reclaim"] = true
	a.ok(wire.MethodLock, rl, nil)
	// A waiting call waits for the grace, then for the lock.
	id := b.send(wire.MethodLock, lk(mb, ob.Fh, "setlkw", "read", 0, 1, "b"))
	noReplyWithin(t, b, 200*time.Millisecond)
	for time.Since(started) < grace+500*time.Millisecond {
		time.Sleep(100 * time.Millisecond)
	}
	e = a.fails(wire.MethodLock, rl, "ENOLCK", 37)
	if e.Data.Reason != wire.ReasonNoGrace {
		t.Fatalf("reclaim after the grace: %+v", e.Data)
	}
	noReplyWithin(t, b, 100*time.Millisecond) // still blocked by a's reclaimed lock
	a.ok(wire.MethodLock, lk(ma, oa.Fh, "setlk", "unlock", 0, 0, "a"), nil)
	if rep := waitReply(t, b, id); rep.Error != nil {
		t.Fatalf("setlkw after the grace and the unlock: %+v", rep.Error)
	}

	// A clean stop with nothing locked: no grace next time.
	b.ok(wire.MethodLock, lk(mb, ob.Fh, "setlk", "unlock", 0, 0, "b"), nil)
	d.Stop()
	d.Restart()
	c := dial(t, "tcp", d.TCPAddr)
	mc := c.mount("default", 0).MountID
	var oc wire.OpenResult
	c.ok(wire.MethodOpen, obj{"mount_id": mc, "inode": st.Stat.Ino, "flags": 2}, &oc)
	c.ok(wire.MethodLock, lk(mc, oc.Fh, "setlk", "write", 0, 0, "c"), nil)
	d.Check(t)
}

// TestLockExamples replays the first example of PROTOCOL.md section 4,
// "Examples", as it is written there: the requests are sent (with the
// real mount ids and handles in place of the example's) on one
// connection per mount, and every reply must be the one shown.
func TestLockExamples(t *testing.T) {
	doc, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(doc)
	sec = sec[strings.Index(sec, "## 4. Locks"):]
	sec = sec[strings.Index(sec, "### Examples"):]
	sec = sec[strings.Index(sec, "```\n")+4:]
	sec = sec[:strings.Index(sec, "```")]

	d := daemontest.Start(t, daemontest.Options{})
	a := dial(t, "tcp", d.TCPAddr)
	b := dial(t, "tcp", d.TCPAddr)
	ma := a.mount("default", 0).MountID
	mb := b.mount("default", 0).MountID
	fh := lockFile(t, a, "/f", 2, ma)[0]
	var st wire.StatResult
	a.ok(wire.MethodGetStatPath, obj{"mount_id": ma, "path": "/f"}, &st)
	var o wire.OpenResult
	b.ok(wire.MethodOpen, obj{"mount_id": mb, "inode": st.Stat.Ino, "flags": 2}, &o)
	subst := strings.NewReplacer(
		`"mount_id":4711829037,"fh":3`, fmt.Sprintf(`"mount_id":%d,"fh":%d`, ma, fh),
		`"mount_id":5533001977,"fh":1`, fmt.Sprintf(`"mount_id":%d,"fh":%d`, mb, o.Fh))
	connOf := map[string]*rawConn{} // request id -> its connection
	pending := map[string][]byte{}  // replies read ahead, by id
	n := 0
	for _, line := range strings.Split(sec, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "--> "):
			req := subst.Replace(line[4:])
			var m struct {
				ID     json.RawMessage `json:"id"`
				Params struct {
					MountID uint64 `json:"mount_id"`
				} `json:"params"`
			}
			if err := json.Unmarshal([]byte(req), &m); err != nil {
				t.Fatalf("example %s: %v", req, err)
			}
			rc := a
			if m.Params.MountID == mb {
				rc = b
			}
			connOf[string(m.ID)] = rc
			rc.sendRaw(req)
			n++
		case strings.HasPrefix(line, "("):
			// "(no reply yet: the call waits)": let it begin to wait.
			time.Sleep(200 * time.Millisecond)
		case strings.HasPrefix(line, "<-- "):
			var m struct {
				ID json.RawMessage `json:"id"`
			}
			if err := json.Unmarshal([]byte(line[4:]), &m); err != nil {
				t.Fatalf("example %s: %v", line, err)
			}
			id := string(m.ID)
			rc := connOf[id]
			for pending[id] == nil {
				body, err := rc.readMsg()
				if err != nil {
					t.Fatalf("reply %s: %v", id, err)
				}
				var r struct {
					ID json.RawMessage `json:"id"`
				}
				if err := json.Unmarshal(body, &r); err != nil {
					t.Fatal(err)
				}
				pending[string(r.ID)] = body
			}
			sameJSON(t, "reply "+id, pending[id], line[4:])
			delete(pending, id)
		}
	}
	if n < 8 {
		t.Fatalf("only %d requests in the example", n)
	}
}
