package server_test

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestReadOnlyMount checks that every call that changes the volume fails
// with EROFS on a read-only mount and that the others work.
func TestReadOnlyMount(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		rw := rc.mount("default", 0).MountID
		var f wire.NewInodeResult
		rc.ok(wire.MethodCreatePath, obj{"mount_id": rw, "path": "/f", "mode": 0o644}, &f)
		rc.ok(wire.MethodWrite, obj{"mount_id": rw, "inode": f.Inode, "offset": 0, "data": []byte("data")}, nil)
		ro := rc.mount("default", wire.MountReadOnly).MountID
		p := func(kv ...any) obj {
			o := obj{"mount_id": ro}
			for i := 0; i < len(kv); i += 2 {
				o[kv[i].(string)] = kv[i+1]
			}
			return o
		}
		ts := obj{"sec": 1, "nsec": 0}
		for _, c := range []struct {
			method string
			params obj
		}{
			{wire.MethodCreate, p("inode", 1, "name", "x", "mode", 0o644)},
			{wire.MethodCreatePath, p("path", "/x", "mode", 0o644)},
			{wire.MethodMkdir, p("inode", 1, "name", "x", "mode", 0o755)},
			{wire.MethodMkdirPath, p("path", "/x", "mode", 0o755)},
			{wire.MethodSymlink, p("inode", 1, "name", "x", "target", "f")},
			{wire.MethodSymlinkPath, p("path", "/x", "target", "f")},
			{wire.MethodLink, p("inode", 1, "name", "x", "target_inode", f.Inode)},
			{wire.MethodLinkPath, p("src_path", "/f", "dst_path", "/x")},
			{wire.MethodUnlink, p("inode", 1, "name", "f")},
			{wire.MethodUnlinkPath, p("path", "/f")},
			{wire.MethodRmdir, p("inode", 1, "name", "f")},
			{wire.MethodRmdirPath, p("path", "/f")},
			{wire.MethodRename, p("src_inode", 1, "src_name", "f", "dst_inode", 1, "dst_name", "x")},
			{wire.MethodRenamePath, p("src_path", "/f", "dst_path", "/x")},
			{wire.MethodChmod, p("inode", f.Inode, "mode", 0o600)},
			{wire.MethodChmodPath, p("path", "/f", "mode", 0o600)},
			{wire.MethodChown, p("inode", f.Inode, "uid", 1, "gid", 1)},
			{wire.MethodChownPath, p("path", "/f", "uid", 1, "gid", 1)},
			{wire.MethodResize, p("inode", f.Inode, "size", 0)},
			{wire.MethodResizePath, p("path", "/f", "size", 0)},
			{wire.MethodSettime, p("inode", f.Inode, "atime", ts, "mtime", ts)},
			{wire.MethodSettimePath, p("path", "/f", "atime", ts, "mtime", ts)},
			{wire.MethodSetattr, p("inode", f.Inode, "mask", wire.SetMode, "mode", 0o600)},
			{wire.MethodSetattrPath, p("path", "/f", "mask", wire.SetMode, "mode", 0o600)},
			{wire.MethodWrite, p("inode", f.Inode, "offset", 0, "data", []byte("x"))},
			{wire.MethodSetXattr, p("inode", f.Inode, "name", "user.x", "value", []byte("v"), "flags", 0)},
			{wire.MethodSetXattrPath, p("path", "/f", "name", "user.x", "value", []byte("v"), "flags", 0)},
			{wire.MethodRemoveXattr, p("inode", f.Inode, "name", "user.x")},
			{wire.MethodRemoveXattrPath, p("path", "/f", "name", "user.x")},
		} {
			rc.fails(c.method, c.params, "EROFS", 0)
		}
		var rr wire.ReadResult
		rc.ok(wire.MethodRead, p("inode", f.Inode, "offset", 0, "length", 10), &rr)
		if string(rr.Data) != "data" {
			t.Errorf("read on read-only mount: %q", rr.Data)
		}
		rc.ok(wire.MethodGetStatPath, p("path", "/f"), nil)
		rc.ok(wire.MethodFlush, p("inode", f.Inode), nil)
		var sv wire.StatvfsResult
		rc.ok(wire.MethodStatvfs, p(), &sv)
		if sv.Flag != 1 {
			t.Errorf("statvfs flag on read-only mount: %d", sv.Flag)
		}

		// Binary channel: WRITE is EROFS, READ works.
		bc := dialBin(t, network, addr)
		bc.request(wire.RequestHeader{Opcode: wire.OpWrite, ID: 1, MountID: ro, Inode: f.Inode, Length: 1}, []byte("x"))
		if h, _ := bc.reply(); h.Errno != 30 || h.Flags != 0 || h.ID != 1 {
			t.Errorf("binary write on read-only mount: %+v", h)
		}
		bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 2, MountID: ro, Inode: f.Inode, Length: 10}, nil)
		if h, data := bc.reply(); h.Errno != 0 || string(data) != "data" {
			t.Errorf("binary read on read-only mount: %+v %q", h, data)
		}
	})
}

// TestProtocolErrors covers malformed messages, unknown methods, bad
// params and bad mounts on JSON-RPC.
func TestProtocolErrors(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		id := rc.mount("default", 0).MountID

		// Not JSON: -32700, id null, connection stays open.
		rc.sendRaw(`{"jsonrpc":"2.0","id":5,"method":`)
		r := rc.recv()
		rc.checkErr(r, "malformed", "EINVAL", -32700)
		if string(r.ID) != "null" {
			t.Errorf("parse error id %s, want null", r.ID)
		}
		// JSON but not a request: -32600, id echoed when readable.
		rc.sendRaw(`{"jsonrpc":"2.0","id":6,"params":{}}`)
		r = rc.recv()
		rc.checkErr(r, "no method", "EINVAL", -32600)
		if string(r.ID) != "6" {
			t.Errorf("invalid request id %s, want 6", r.ID)
		}
		rc.sendRaw(`[1,2,3]`)
		rc.checkErr(rc.recv(), "batch", "EINVAL", -32600)
		rc.sendRaw(`"just a string"`)
		rc.checkErr(rc.recv(), "string", "EINVAL", -32600)
		rc.ok(wire.MethodPing, obj{}, nil) // still open

		// Unknown method.
		rc.fails("no_such_method", obj{}, "ENOSYS", -32601)

		// Params: wrong type, missing, unknown, null, not an object.
		for _, params := range []string{
			`{"mount_id":"x","inode":1}`,
			fmt.Sprintf(`{"mount_id":%d,"inode":-1}`, id),
			fmt.Sprintf(`{"mount_id":%d,"inode":1.5}`, id),
			fmt.Sprintf(`{"mount_id":%d}`, id),
			`{"inode":1}`,
			fmt.Sprintf(`{"mount_id":%d,"inode":1,"extra":true}`, id),
			fmt.Sprintf(`{"mount_id":%d,"inode":null}`, id),
			`[1,1]`,
			`"x"`,
			`null`,
		} {
			rc.nextID++
			rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"get_stat","params":%s}`, rc.nextID, params))
			r := rc.recv()
			e := rc.checkErr(r, "get_stat "+params, "EINVAL", -32602)
			if e.Data.Reason != "" {
				t.Errorf("params %s: reason %q", params, e.Data.Reason)
			}
		}
		// Missing params object on a method that needs members.
		rc.nextID++
		rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"get_stat"}`, rc.nextID))
		rc.checkErr(rc.recv(), "no params", "EINVAL", -32602)
		rc.fails(wire.MethodPing, obj{"x": 1}, "EINVAL", -32602)
		rc.fails(wire.MethodMount, obj{"volume": "default"}, "EINVAL", -32602)
		rc.fails(wire.MethodWrite, obj{"mount_id": id, "inode": 1, "offset": 0, "data": "not base64!"}, "EINVAL", -32602)

		// Notifications are ignored: the next reply is for the next call.
		rc.sendRaw(`{"jsonrpc":"2.0","method":"ping","params":{}}`)
		rc.ok(wire.MethodPing, obj{}, nil)
		// String ids work.
		rc.sendRaw(`{"jsonrpc":"2.0","id":"abc","method":"ping","params":{}}`)
		if r := rc.recv(); string(r.ID) != `"abc"` || r.Error != nil {
			t.Errorf("string id reply %+v", r)
		}
		// Extra headers are ignored.
		body := `{"jsonrpc":"2.0","id":77,"method":"ping"}`
		rc.write(fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if r := rc.recv(); string(r.ID) != "77" || r.Error != nil {
			t.Errorf("ping with extra header %+v", r)
		}

		// Bad mounts.
		for _, bad := range []uint64{0, 1, id ^ 1, 1<<53 + 5} {
			e := rc.fails(wire.MethodGetStat, obj{"mount_id": bad, "inode": 1}, "EINVAL", 22)
			if e.Data.Reason != wire.ReasonBadMount {
				t.Errorf("mount id %d: data %+v", bad, e.Data)
			}
		}
	})
}

// TestFramingLimits checks that broken framing and oversized messages
// close the connection and leave the daemon serving.
func TestFramingLimits(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{MaxMessageBytes: 64 << 10})
	for _, c := range []struct{ name, data string }{
		{"oversized", "Content-Length: 65537\r\n\r\n{"},
		{"huge", "Content-Length: 99999999999999\r\n\r\n"},
		{"no length", "X-Foo: 1\r\n\r\n{}"},
		{"bad length", "Content-Length: abc\r\n\r\n{}"},
		{"no CR", "Content-Length: 2\n\n{}"},
		{"no colon", "Content-Length 2\r\n\r\n{}"},
		{"long header", strings.Repeat("x", 100000) + "\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dial(t, "tcp", d.TCPAddr)
			rc.ok(wire.MethodPing, obj{}, nil)
			rc.write(c.data)
			rc.closed()
		})
	}
	// A message of exactly the limit is fine.
	rc := dial(t, "unix", d.UnixPath)
	body := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}`
	body += strings.Repeat(" ", 64<<10-len(body))
	rc.sendRaw(body)
	if r := rc.recv(); r.Error != nil {
		t.Fatalf("message at the limit: %+v", r.Error)
	}
	rc.ok(wire.MethodPing, obj{}, nil)
	d.Check(t)
}

// TestPipelining sends many requests without waiting and matches the
// replies by id; with max_inflight_per_conn 1, requests over the limit get
// EAGAIN at once.
func TestPipelining(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	const n = 200
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		want[fmt.Sprint(rc.send(wire.MethodMkdirPath, obj{"mount_id": id, "path": fmt.Sprintf("/d%d", i), "mode": 0o755}))] = true
	}
	for i := 0; i < n; i++ {
		r := rc.recv()
		if !want[string(r.ID)] {
			t.Fatalf("unexpected or duplicate reply id %s", r.ID)
		}
		delete(want, string(r.ID))
		if r.Error != nil {
			t.Fatalf("pipelined mkdir: %+v", r.Error)
		}
	}

	// With max_inflight_per_conn 1, a slow call (readdir_plus of a big
	// directory) followed at once by pings sent in the same write: the
	// pings arrive while the readdir runs and get EAGAIN.
	d2 := daemontest.Start(t, daemontest.Options{MaxInflightPerConn: 1})
	rc = dial(t, "tcp", d2.TCPAddr)
	id = rc.mount("default", 0).MountID
	for i := 0; i < 500; i++ {
		rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": fmt.Sprintf("/f%d", i), "mode": 0o644}, nil)
	}
	eagain := 0
	for round := 0; round < 20 && eagain == 0; round++ {
		var batch strings.Builder
		frame := func(body string) { fmt.Fprintf(&batch, "Content-Length: %d\r\n\r\n%s", len(body), body) }
		frame(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"readdir_plus","params":{"mount_id":%d,"inode":1,"prev_cookie":-1,"max_entries":4096}}`, id))
		for i := 0; i < 10; i++ {
			frame(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, 2+i))
		}
		rc.write(batch.String())
		for i := 0; i < 11; i++ {
			r := rc.recv()
			switch {
			case r.Error == nil:
			case string(r.ID) != "1" && r.Error.Data != nil && r.Error.Data.Name == "EAGAIN" && r.Error.Code == 11 &&
				r.Error.Data.Reason == wire.ReasonBusy:
				eagain++
			default:
				t.Fatalf("pipelined call %s: %+v", r.ID, r.Error)
			}
		}
	}
	if eagain == 0 {
		t.Error("no EAGAIN with max_inflight_per_conn = 1")
	}
	rc.ok(wire.MethodPing, obj{}, nil)
	d2.Check(t)
}

// TestMaxConnections checks that connections over the limit are closed and
// that the slots come back.
func TestMaxConnections(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{MaxConnections: 2})
	a := dial(t, "tcp", d.TCPAddr)
	b := dial(t, "unix", d.UnixPath)
	a.ok(wire.MethodPing, obj{}, nil)
	b.ok(wire.MethodPing, obj{}, nil)
	c := dial(t, "tcp", d.TCPAddr)
	c.write("Content-Length: 2\r\n\r\n{}")
	// A clear error first (id null, EAGAIN), then the connection closes.
	r := c.recv()
	if string(r.ID) != "null" {
		t.Errorf("refusal id %s, want null", r.ID)
	}
	c.checkErr(r, "refused connection", "EAGAIN", 11)
	c.closed()
	// A binary channel: an EAGAIN reply to its first request, with its
	// id, then the connection closes.
	bc := dialBin(t, "tcp", d.TCPAddr)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 77, MountID: 1, Inode: 1}, nil)
	if h, data := bc.reply(); h.Errno != uint32(syscall.EAGAIN) || h.ID != 77 || h.Opcode != wire.OpGetStat || len(data) != 0 {
		t.Errorf("binary refusal %+v %q", h, data)
	}
	bc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := bc.c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("refused binary connection still open: %d, %v", n, err)
	}
	a.c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dial(t, "tcp", d.TCPAddr)
		c.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		if _, err := c.readMsg(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection slot not released")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestart checks durability across kill -9 and that mount ids from
// before a restart are bad mounts.
func TestRestart(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/keep", "mode": 0o644}, &f)
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": []byte("survives")}, nil)
	d.Kill()
	d.Restart()
	rc = dial(t, "tcp", d.TCPAddr)
	if e := rc.fails(wire.MethodGetStat, obj{"mount_id": id, "inode": 1}, "EINVAL", 0); e.Data.Reason != wire.ReasonBadMount {
		t.Errorf("old mount id after restart: %+v", e.Data)
	}
	id = rc.mount("default", 0).MountID
	var rr wire.ReadResult
	rc.ok(wire.MethodRead, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "length": 100}, &rr)
	if string(rr.Data) != "survives" {
		t.Errorf("after kill -9: %q", rr.Data)
	}
	d.Check(t)
}

// TestShutdownDrains checks that SIGTERM lets in-flight calls finish.
func TestShutdownDrains(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)
	data := make([]byte, 2<<20)
	const n = 8
	for i := 0; i < n; i++ {
		rc.send(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": i << 21, "data": data})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	got := 0
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			if _, err := rc.readMsg(); err != nil {
				return
			}
			got++
		}
	}()
	time.Sleep(20 * time.Millisecond)
	d.Stop()
	wg.Wait()
	t.Logf("%d of %d pipelined writes answered before shutdown", got, n)
	d.Restart()
	rc = dial(t, "tcp", d.TCPAddr)
	id = rc.mount("default", 0).MountID
	var sr wire.StatResult
	rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": f.Inode}, &sr)
	if sr.Stat.Size < uint64(got)<<21 && got == n {
		t.Errorf("size %d after %d acknowledged writes", sr.Stat.Size, got)
	}
	d.Check(t)
}
