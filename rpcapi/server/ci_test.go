package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestLookupCI covers lookup_ci on both channels: the real name, inode and
// stat, the exact name first, ENOENT, and lookup's errors.
func TestLookupCI(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		id := rc.mount("default", 0).MountID
		p := func(ino uint64, name string) obj { return obj{"mount_id": id, "inode": ino, "name": name} }
		var dir, f, g wire.NewInodeResult
		rc.ok(wire.MethodMkdir, obj{"mount_id": id, "inode": 1, "name": "Docs", "mode": 0o755}, &dir)
		rc.ok(wire.MethodCreate, obj{"mount_id": id, "inode": dir.Inode, "name": "Élan.TXT", "mode": 0o644}, &f)
		rc.ok(wire.MethodCreate, obj{"mount_id": id, "inode": dir.Inode, "name": "élan.txt", "mode": 0o600}, &g)

		var r wire.LookupCIResult
		rc.ok(wire.MethodLookupCI, p(1, "DOCS"), &r)
		if r.Name != "Docs" || r.Inode != dir.Inode || r.Stat.Ino != dir.Inode || r.Stat.Mode != 0o40755 {
			t.Fatalf("lookup_ci DOCS: %+v", r)
		}
		rc.ok(wire.MethodLookupCI, p(dir.Inode, "élan.txt"), &r) // exact
		if r.Name != "élan.txt" || r.Inode != g.Inode || r.Stat != g.Stat {
			t.Fatalf("lookup_ci exact: %+v, want %+v", r, g)
		}
		rc.ok(wire.MethodLookupCI, p(dir.Inode, "ÉLAN.TXT"), &r) // first in byte order
		if r.Name != "Élan.TXT" || r.Inode != f.Inode || r.Stat != f.Stat {
			t.Fatalf("lookup_ci folded: %+v, want %+v", r, f)
		}
		rc.fails(wire.MethodLookupCI, p(dir.Inode, "elan.txt"), "ENOENT", 2)
		rc.fails(wire.MethodLookupCI, p(f.Inode, "x"), "ENOTDIR", 20)
		rc.fails(wire.MethodLookupCI, p(dir.Inode, "a/b"), "EINVAL", 22)
		rc.fails(wire.MethodLookupCI, obj{"mount_id": id, "inode": 1}, "EINVAL", -32602)
		if e := rc.fails(wire.MethodLookupCI, obj{"mount_id": 4242, "inode": 1, "name": "x"}, "EINVAL", 22); e.Data.Reason != wire.ReasonBadMount {
			t.Fatalf("bad mount: %+v", e)
		}

		// The binary LOOKUP_CI: stat record, then the real name.
		bc := dialBin(t, network, addr)
		call := func(reqID, mount, ino uint64, name string) (wire.ReplyHeader, []byte) {
			t.Helper()
			bc.request(wire.RequestHeader{Opcode: wire.OpLookupCI, ID: reqID, MountID: mount, Inode: ino, Length: uint32(len(name))}, []byte(name))
			h, data := bc.reply()
			if h.ID != reqID || h.Opcode != wire.OpLookupCI {
				t.Fatalf("reply %+v to request %d", h, reqID)
			}
			return h, data
		}
		h, data := call(1, id, dir.Inode, "élan.TXT")
		if h.Errno != 0 || int(h.Length) != wire.StatSize+len("Élan.TXT") {
			t.Fatalf("binary lookup_ci: %+v", h)
		}
		st, err := wire.DecodeStat(data[:wire.StatSize])
		short := f.Stat // the 120-byte record has no blocks and blksize
		short.Blocks, short.Blksize = 0, 0
		if err != nil || st != short || string(data[wire.StatSize:]) != "Élan.TXT" {
			t.Fatalf("binary lookup_ci: %+v %q %v", st, data[wire.StatSize:], err)
		}
		// With STAT_EXT: the 136-byte record, then the name.
		bc.request(wire.RequestHeader{Opcode: wire.OpLookupCI, ID: 5, MountID: id, Inode: dir.Inode, Length: uint32(len("ÉLAN.txt")), Flags: wire.RequestFlagStatExt}, []byte("ÉLAN.txt"))
		if h, data := bc.reply(); h.Errno != 0 || int(h.Length) != wire.StatExtSize+len("Élan.TXT") || string(data[wire.StatExtSize:]) != "Élan.TXT" {
			t.Fatalf("binary lookup_ci with STAT_EXT: %+v %q", h, data)
		} else if st, err := wire.DecodeStatExt(data); err != nil || st.Ino != f.Inode || st.Blksize == 0 {
			t.Fatalf("binary lookup_ci with STAT_EXT: %+v %v", st, err)
		}
		for _, c := range []struct {
			name  string
			ino   uint64
			errno uint32
		}{{"nope", dir.Inode, 2}, {"x", f.Inode, 20}, {"", dir.Inode, 22}, {strings.Repeat("x", 256), dir.Inode, 36}} {
			if h, _ := call(2, id, c.ino, c.name); h.Errno != c.errno || h.Length != 0 {
				t.Fatalf("binary lookup_ci %q: %+v, want errno %d", c.name, h, c.errno)
			}
		}
		if h, _ := call(3, 4242, 1, "docs"); h.Errno != 22 || h.Flags != wire.ReplyFlagBadMount {
			t.Fatalf("binary lookup_ci, bad mount: %+v", h)
		}
		ro := rc.mount("default", wire.MountReadOnly).MountID
		if h, data := call(4, ro, 1, "docs"); h.Errno != 0 || string(data[wire.StatSize:]) != "Docs" {
			t.Fatalf("binary lookup_ci on a read-only mount: %+v %q", h, data)
		}
		if wire.OpName(wire.OpLookupCI) != wire.MethodLookupCI {
			t.Fatalf("OpName(OpLookupCI) = %q", wire.OpName(wire.OpLookupCI))
		}
		d.Check(t)
	})
}

// TestLookupCIExample sends the literal example of PROTOCOL.md,
// "Case-insensitive lookup" (with the real mount id).
func TestLookupCIExample(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/hello.txt", "mode": 0o644}, &f)
	if f.Inode != 2 {
		t.Fatalf("hello.txt is inode %d, the example has 2", f.Inode)
	}
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":5,"method":"lookup_ci","params":{"mount_id":%d,"inode":1,"name":"HELLO.TXT"}}`, id))
	r := rc.recv()
	var res wire.LookupCIResult
	if err := json.Unmarshal(r.Result, &res); err != nil || string(r.ID) != "5" {
		t.Fatalf("lookup_ci: %+v %v", r, err)
	}
	if res.Name != "hello.txt" || res.Inode != 2 || res.Stat != f.Stat {
		t.Fatalf("lookup_ci result %+v, want hello.txt %+v", res, f.Stat)
	}
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":6,"method":"lookup_ci","params":{"mount_id":%d,"inode":1,"name":"hello.txt.bak"}}`, id))
	body, err := rc.readMsg()
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "lookup_ci error reply", body,
		`{"jsonrpc":"2.0","id":6,"error":{"code":2,"message":"lookup_ci 1/\"hello.txt.bak\": no such file or directory","data":{"errno":2,"name":"ENOENT"}}}`)
}
