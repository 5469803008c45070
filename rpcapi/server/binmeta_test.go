package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestBinaryMetadata covers LOOKUP, GET_STAT, CREATE, UNLINK,
// READDIR_PLUS and FLUSH on the binary channel: the same answers as their
// JSON-RPC forms, the same errnos, EROFS, bad mounts and name limits.
func TestBinaryMetadata(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		id := rc.mount("default", 0).MountID
		bc := dialBin(t, network, addr)
		var nextID uint64
		call := func(op uint16, ino, off uint64, length uint32, payload []byte) (wire.ReplyHeader, []byte) {
			t.Helper()
			nextID++
			if wire.HasPayload(op) {
				length = uint32(len(payload))
			}
			bc.request(wire.RequestHeader{Opcode: op, ID: nextID, MountID: id, Inode: ino, Offset: off, Length: length}, payload)
			h, data := bc.reply()
			if h.ID != nextID || h.Opcode != op {
				t.Fatalf("reply %+v to request %d", h, nextID)
			}
			return h, data
		}
		stat := func(what string, h wire.ReplyHeader, data []byte) wire.Stat {
			t.Helper()
			if h.Errno != 0 || h.Length != wire.StatSize {
				t.Fatalf("%s: %+v", what, h)
			}
			st, err := wire.DecodeStat(data)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		errno := func(what string, h wire.ReplyHeader, want uint32) {
			t.Helper()
			if h.Errno != want || h.Length != 0 {
				t.Fatalf("%s: %+v, want errno %d", what, h, want)
			}
		}

		// CREATE, then the same stat from LOOKUP, GET_STAT and JSON.
		h, data := call(wire.OpCreate, 1, 0o640, 0, []byte("f"))
		f := stat("create", h, data)
		if f.Mode != 0o100640 || f.Nlink != 1 || f.Size != 0 {
			t.Fatalf("created %+v", f)
		}
		h, data = call(wire.OpLookup, 1, 0, 0, []byte("f"))
		if got := stat("lookup", h, data); got != f {
			t.Fatalf("lookup %+v, create %+v", got, f)
		}
		var js wire.StatResult
		rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": f.Ino}, &js)
		h, data = call(wire.OpGetStat, f.Ino, 0, 0, nil)
		// The 120-byte record has no blocks/blksize (RequestFlagStatExt
		// asks for them: statext_test.go).
		if got, want := stat("get_stat", h, data), js.Stat; got.Blocks != 0 || got.Blksize != 0 || func() bool {
			want.Blocks, want.Blksize = 0, 0
			return got != want
		}() {
			t.Fatalf("binary get_stat %+v, JSON %+v", got, js.Stat)
		}
		errno("create again", first(call(wire.OpCreate, 1, 0o644, 0, []byte("f"))), 17)
		errno("lookup missing", first(call(wire.OpLookup, 1, 0, 0, []byte("nope"))), 2)
		errno("get_stat missing", first(call(wire.OpGetStat, 987654, 0, 0, nil)), 2)
		errno("flush missing", first(call(wire.OpFlush, 987654, 0, 0, nil)), 2)
		errno("flush", first(call(wire.OpFlush, f.Ino, 0, 0, nil)), 0)
		errno("empty name", first(call(wire.OpCreate, 1, 0o644, 0, nil)), 22)
		errno("dot name", first(call(wire.OpCreate, 1, 0o644, 0, []byte(".."))), 22)
		errno("slash in name", first(call(wire.OpCreate, 1, 0o644, 0, []byte("a/b"))), 22)
		errno("invalid UTF-8", first(call(wire.OpCreate, 1, 0o644, 0, []byte("a\xff"))), 22)
		errno("long name", first(call(wire.OpLookup, 1, 0, 0, []byte(strings.Repeat("x", 256)))), 36)
		errno("bad mode", first(call(wire.OpCreate, 1, 1<<40, 0, []byte("m"))), 22)
		errno("create in a file", first(call(wire.OpCreate, f.Ino, 0o644, 0, []byte("x"))), 20)
		rc.ok(wire.MethodMkdirPath, obj{"mount_id": id, "path": "/d", "mode": 0o755}, nil)
		errno("unlink a directory", first(call(wire.OpUnlink, 1, 0, 0, []byte("d"))), 21)

		// READDIR_PLUS in pages of 7 sees every entry once, with stats.
		for i := range 30 {
			h, data := call(wire.OpCreate, 1, 0o600, 0, []byte(fmt.Sprintf("g%02d", i)))
			stat("create", h, data)
		}
		seen := map[string]int{}
		cookie := int64(-1)
		for pages := 0; ; pages++ {
			h, data := call(wire.OpReaddirPlus, 1, uint64(cookie), 7, nil)
			if h.Errno != 0 || pages > 10 {
				t.Fatalf("readdir_plus: %+v after %d pages", h, pages)
			}
			ents, eof, err := wire.DecodeReaddirPlus(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				seen[e.Name]++
				if e.Stat == nil || e.Stat.Ino != e.Inode {
					t.Fatalf("entry %+v", e)
				}
				cookie = e.Cookie
			}
			if eof {
				break
			}
			if len(ents) != 7 {
				t.Fatalf("short page of %d without eof", len(ents))
			}
		}
		if len(seen) != 34 || seen["."] != 1 || seen[".."] != 1 || seen["g29"] != 1 || seen["f"] != 1 {
			t.Fatalf("readdir_plus saw %d names: %v", len(seen), seen)
		}
		errno("readdir_plus of a file", first(call(wire.OpReaddirPlus, f.Ino, ^uint64(0), 0, nil)), 20)

		errno("unlink", first(call(wire.OpUnlink, 1, 0, 0, []byte("f"))), 0)
		errno("unlink again", first(call(wire.OpUnlink, 1, 0, 0, []byte("f"))), 2)

		// Bad mount; read-only mount.
		bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 999, MountID: 12345, Inode: 1}, nil)
		if h, _ := bc.reply(); h.Errno != 22 || h.Flags != wire.ReplyFlagBadMount {
			t.Fatalf("bad mount: %+v", h)
		}
		ro := rc.mount("default", wire.MountReadOnly).MountID
		for _, op := range []uint16{wire.OpCreate, wire.OpUnlink} {
			bc.request(wire.RequestHeader{Opcode: op, ID: 1000, MountID: ro, Inode: 1, Length: 3}, []byte("g00"))
			if h, _ := bc.reply(); h.Errno != 30 {
				t.Fatalf("%s on a read-only mount: %+v", wire.OpName(op), h)
			}
		}
		bc.request(wire.RequestHeader{Opcode: wire.OpLookup, ID: 1001, MountID: ro, Inode: 1, Length: 3}, []byte("g00"))
		if h, _ := bc.reply(); h.Errno != 0 {
			t.Fatalf("lookup on a read-only mount: %+v", h)
		}

		// A name payload over MaxNamePayload: an error, then the close.
		bc.request(wire.RequestHeader{Opcode: wire.OpLookup, ID: 1002, MountID: id, Inode: 1, Length: wire.MaxNamePayload + 1}, nil)
		if h, _ := bc.reply(); h.Errno != 36 {
			t.Fatalf("huge name: %+v", h)
		}
		bc.closed()
		d.Check(t)
	})
}

func first(h wire.ReplyHeader, _ []byte) wire.ReplyHeader { return h }
