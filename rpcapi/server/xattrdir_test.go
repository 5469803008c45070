package server_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestReaddirPlusXattr: readdir_plus with "xattrs" and READDIR_PLUS_XATTR
// give each entry what list_xattr and get_xattr give for it, as the
// caller, on both channels; per-entry errnos; paging; bad requests.
func TestReaddirPlusXattr(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		root := rc.mount("default", 0).MountID
		var user wire.MountResult
		rc.ok(wire.MethodMount, obj{"volume": "default", "user": "u", "uid": 1000, "gid": 1000}, &user)
		uid := user.MountID

		var dir wire.NewInodeResult
		rc.ok(wire.MethodMkdirPath, obj{"mount_id": root, "path": "/x", "mode": 0o777}, &dir)
		mk := func(name string, mode uint32, xattrs map[string]string) uint64 {
			t.Helper()
			var r wire.NewInodeResult
			rc.ok(wire.MethodCreate, obj{"mount_id": root, "inode": dir.Inode, "name": name, "mode": mode}, &r)
			for k, v := range xattrs {
				rc.ok(wire.MethodSetXattr, obj{"mount_id": root, "inode": r.Inode, "name": k, "value": []byte(v)}, nil)
			}
			return r.Inode
		}
		mk("a", 0o644, map[string]string{"user.DOSATTRIB": "dos-a", "user.other": "o"})
		mk("b", 0o644, nil)
		mk("c", 0o600, map[string]string{"user.DOSATTRIB": "dos-c"})              // unreadable for uid 1000
		mk("d", 0o644, map[string]string{"trusted.t": "root only", "user.e": ""}) // empty value
		names := []string{"user.DOSATTRIB", "user.e"}

		// What list_xattr and get_xattr answer, entry by entry.
		want := func(mount uint64, ino uint64) *wire.EntryXattrs {
			t.Helper()
			x := &wire.EntryXattrs{Names: []string{}, Values: []wire.XattrValue{}}
			r := rc.call(wire.MethodListXattr, obj{"mount_id": mount, "inode": ino})
			if r.Error != nil {
				x.Errno = uint32(r.Error.Data.Errno)
			} else {
				var l wire.ListXattrResult
				rc.ok(wire.MethodListXattr, obj{"mount_id": mount, "inode": ino}, &l)
				x.Names = l.Names
			}
			for _, n := range names {
				v := wire.XattrValue{Name: n}
				r := rc.call(wire.MethodGetXattr, obj{"mount_id": mount, "inode": ino, "name": n})
				if r.Error != nil {
					v.Errno = uint32(r.Error.Data.Errno)
				} else {
					var g wire.GetXattrResult
					rc.ok(wire.MethodGetXattr, obj{"mount_id": mount, "inode": ino, "name": n}, &g)
					v.Value = g.Value
				}
				x.Values = append(x.Values, v)
			}
			return x
		}
		norm := func(x *wire.EntryXattrs) *wire.EntryXattrs {
			c := *x
			c.Values = append([]wire.XattrValue{}, x.Values...)
			for i := range c.Values {
				if c.Values[i].Value == nil {
					c.Values[i].Value = []byte{}
				}
				if c.Values[i].Errno != 0 {
					c.Values[i].Value = []byte{}
				}
			}
			return &c
		}
		check := func(what string, mount uint64, ents []wire.DirEntry) {
			t.Helper()
			if len(ents) != 6 {
				t.Fatalf("%s: %d entries", what, len(ents))
			}
			for _, e := range ents {
				if e.Xattr == nil || e.Stat == nil || e.Stat.Ino != e.Inode {
					t.Fatalf("%s: entry %+v", what, e)
				}
				if got, w := norm(e.Xattr), norm(want(mount, e.Inode)); !reflect.DeepEqual(got, w) {
					t.Fatalf("%s: %q: got %+v, want %+v", what, e.Name, got, w)
				}
			}
		}

		bc := dialBin(t, network, addr)
		var nextID uint64
		bin := func(mount uint64, ino uint64, prev int64, max uint32, names []string) (wire.ReplyHeader, []byte) {
			t.Helper()
			nextID++
			p := wire.AppendXattrDirRequest(nil, max, names)
			bc.request(wire.RequestHeader{Opcode: wire.OpReaddirPlusXattr, ID: nextID, MountID: mount, Inode: ino,
				Offset: uint64(prev), Length: uint32(len(p)), Flags: wire.RequestFlagStatExt}, p)
			return bc.reply()
		}
		for _, m := range []struct {
			name string
			id   uint64
		}{{"root", root}, {"uid 1000", uid}} {
			// JSON.
			var r wire.ReaddirResult
			rc.ok(wire.MethodReaddirPlus, obj{"mount_id": m.id, "inode": dir.Inode, "prev_cookie": -1, "xattrs": names}, &r)
			if !r.EOF {
				t.Fatalf("json %s: no eof", m.name)
			}
			check("json "+m.name, m.id, r.Entries)
			// Binary, in pages of 4.
			var all []wire.DirEntry
			prev := int64(-1)
			for range 5 {
				h, data := bin(m.id, dir.Inode, prev, 4, names)
				if h.Errno != 0 {
					t.Fatalf("binary %s: %+v", m.name, h)
				}
				ents, eof, err := wire.DecodeReaddirPlusXattr(data, wire.RequestFlagStatExt, names)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, ents...)
				if eof {
					break
				}
				prev = ents[len(ents)-1].Cookie
			}
			check("binary "+m.name, m.id, all)
		}
		// The cases that matter, spelled out for uid 1000.
		var r wire.ReaddirResult
		rc.ok(wire.MethodReaddirPlus, obj{"mount_id": uid, "inode": dir.Inode, "prev_cookie": -1, "xattrs": names}, &r)
		byName := map[string]*wire.EntryXattrs{}
		for _, e := range r.Entries {
			byName[e.Name] = e.Xattr
		}
		if x := byName["a"]; x.Errno != 0 || !reflect.DeepEqual(x.Names, []string{"user.DOSATTRIB", "user.other"}) ||
			string(x.Values[0].Value) != "dos-a" || x.Values[1].Errno != 61 {
			t.Fatalf("a: %+v", x)
		}
		if x := byName["c"]; x.Errno != 13 || x.Values[0].Errno != 13 {
			t.Fatalf("c (0600, another owner): %+v", x)
		}
		if x := byName["d"]; !reflect.DeepEqual(x.Names, []string{"user.e"}) || x.Values[1].Errno != 0 || len(x.Values[1].Value) != 0 {
			t.Fatalf("d (trusted.* hidden, empty value): %+v", x)
		}
		// Without "xattrs": no member; with an empty list: the names only.
		r = wire.ReaddirResult{}
		rc.ok(wire.MethodReaddirPlus, obj{"mount_id": uid, "inode": dir.Inode, "prev_cookie": -1}, &r)
		if r.Entries[2].Xattr != nil {
			t.Fatalf("readdir_plus without xattrs: %+v", r.Entries[2])
		}
		r = wire.ReaddirResult{}
		rc.ok(wire.MethodReaddirPlus, obj{"mount_id": root, "inode": dir.Inode, "prev_cookie": -1, "xattrs": []string{}}, &r)
		for _, e := range r.Entries {
			if e.Xattr == nil || len(e.Xattr.Values) != 0 {
				t.Fatalf("empty xattrs: %+v", e)
			}
		}

		// Bad requests: EINVAL, and the connection stays usable.
		rc.fails(wire.MethodReaddirPlus, obj{"mount_id": root, "inode": dir.Inode, "prev_cookie": -1, "xattrs": []string{""}}, "EINVAL", 22)
		rc.fails(wire.MethodReaddirPlus, obj{"mount_id": root, "inode": dir.Inode, "prev_cookie": -1,
			"xattrs": strings.Split(strings.Repeat("user.a,", 17)[:7*17-1], ",")}, "EINVAL", 22)
		for i, p := range [][]byte{{1, 2}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 9, 'a'}} {
			nextID++
			bc.request(wire.RequestHeader{Opcode: wire.OpReaddirPlusXattr, ID: nextID, MountID: root, Inode: dir.Inode,
				Offset: ^uint64(0), Length: uint32(len(p))}, p)
			if h, _ := bc.reply(); h.Errno != 22 {
				t.Fatalf("bad payload %d: %+v", i, h)
			}
		}
		if h, _ := bin(root, 987654, -1, 0, names); h.Errno != 2 {
			t.Fatalf("missing directory: %+v", h)
		}
		// A large value ends a batch early (XattrDirBudget), never an entry.
		big := bytes.Repeat([]byte{'v'}, 60<<10)
		for i := range 20 {
			ino := mk(fmt.Sprintf("big%02d", i), 0o644, nil)
			rc.ok(wire.MethodSetXattr, obj{"mount_id": root, "inode": ino, "name": "user.DOSATTRIB", "value": big}, nil)
		}
		h, data := bin(root, dir.Inode, -1, 0, names)
		ents, eof, err := wire.DecodeReaddirPlusXattr(data, wire.RequestFlagStatExt, names)
		if h.Errno != 0 || err != nil || eof || len(ents) >= 26 || len(ents) < 10 {
			t.Fatalf("big batch: %+v, %d entries, eof %v, %v", h, len(ents), eof, err)
		}
		d.Check(t)
	})
}

// TestBinaryHandleOps: OPEN, CLOSE, LOCK, SETATTR, GET_XATTR, SET_XATTR,
// LIST_XATTR and CREATE_OPEN on the binary channel answer as their
// JSON-RPC forms.
func TestBinaryHandleOps(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		id := rc.mount("default", 0).MountID
		bc := dialBin(t, network, addr)
		var nextID uint64
		call := func(op uint16, ino, off uint64, payload []byte) (wire.ReplyHeader, []byte) {
			t.Helper()
			nextID++
			bc.request(wire.RequestHeader{Opcode: op, ID: nextID, MountID: id, Inode: ino, Offset: off,
				Length: uint32(len(payload)), Flags: wire.RequestFlagStatExt}, payload)
			h, data := bc.reply()
			if h.ID != nextID || h.Opcode != op {
				t.Fatalf("reply %+v to request %d", h, nextID)
			}
			return h, data
		}
		errno := func(what string, h wire.ReplyHeader, want uint32) {
			t.Helper()
			if h.Errno != want {
				t.Fatalf("%s: %+v, want errno %d", what, h, want)
			}
		}
		var f wire.NewInodeResult
		rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)

		// OPEN: handle + stat; the handle works with JSON lock and close.
		h, data := call(wire.OpOpen, f.Inode, wire.OpenReadWrite, nil)
		if h.Errno != 0 || len(data) != 8+wire.StatExtSize {
			t.Fatalf("open: %+v %d bytes", h, len(data))
		}
		fh := binary.LittleEndian.Uint64(data)
		if st, _ := wire.DecodeStatExt(data[8:]); fh == 0 || st.Ino != f.Inode {
			t.Fatalf("open: fh %d stat %+v", fh, st)
		}
		errno("open bad flags", first(call(wire.OpOpen, f.Inode, 3, nil)), 22)
		errno("open missing", first(call(wire.OpOpen, 987654, 0, nil)), 2)

		// LOCK: setlk, a conflicting getlk through another handle.
		h, data = call(wire.OpOpen, f.Inode, wire.OpenReadOnly, nil)
		fh2 := binary.LittleEndian.Uint64(data)
		lk := func(fh uint64, cmd, typ string, start, n int64, owner string) (wire.ReplyHeader, []byte) {
			p := wire.AppendLockRequest(nil, &wire.LockParams{Fh: fh, Cmd: cmd, Type: typ, Start: start, Len: n, Owner: owner})
			return call(wire.OpLock, 0, 0, p)
		}
		errno("setlk", first(lk(fh, wire.LockSetLk, wire.LockWrite, 10, 20, "me")), 0)
		h, data = lk(fh2, wire.LockGetLk, wire.LockRead, 0, 0, "other")
		lr, err := wire.DecodeLockReply(data)
		if h.Errno != 0 || err != nil || lr.Type != wire.LockWrite || *lr.Start != 10 || *lr.Len != 20 || *lr.Owner != "me" {
			t.Fatalf("getlk: %+v %+v %v", h, lr, err)
		}
		errno("conflicting setlk", first(lk(fh2, wire.LockSetLk, wire.LockRead, 15, 1, "other")), 11)
		errno("write lock on a read-only handle", first(lk(fh2, wire.LockSetLk, wire.LockWrite, 100, 1, "other")), 9)
		var jr wire.LockResult
		rc.ok(wire.MethodLock, obj{"mount_id": id, "fh": fh2, "cmd": "getlk", "type": "read", "start": 0, "len": 0, "owner": "x"}, &jr)
		if jr.Type != wire.LockWrite || *jr.Owner != "me" {
			t.Fatalf("JSON getlk after a binary setlk: %+v", jr)
		}
		errno("unlock", first(lk(fh, wire.LockSetLk, wire.LockUnlock, 0, 0, "me")), 0)
		h, data = lk(fh2, wire.LockGetLk, wire.LockRead, 0, 0, "other")
		if lr, err := wire.DecodeLockReply(data); h.Errno != 0 || err != nil || lr.Type != wire.LockUnlock {
			t.Fatalf("getlk after unlock: %+v %+v %v", h, lr, err)
		}
		errno("lock on a bad handle", first(lk(12345, wire.LockSetLk, wire.LockRead, 0, 1, "")), 9)
		errno("bad lock payload", first(call(wire.OpLock, 0, 0, []byte{1, 2, 3})), 22)
		errno("lock owner too long", first(lk(fh, wire.LockSetLk, wire.LockRead, 0, 1, strings.Repeat("o", 65))), 22)

		// SETATTR: mode and mtime; the reply is the new stat.
		sf := wire.Attrs{Mask: wire.SetMode | wire.SetMtime, Mode: 0o600, Mtime: &wire.Timespec{Sec: 1234, Nsec: 5}}.Fields()
		h, data = call(wire.OpSetattr, f.Inode, 0, wire.AppendSetattr(nil, &sf))
		st, _ := wire.DecodeStatExt(data)
		if h.Errno != 0 || st.Mode != 0o100600 || st.Mtime.Sec != 1234 || st.Mtime.Nsec != 5 {
			t.Fatalf("setattr: %+v %+v", h, st)
		}
		var js wire.StatResult
		rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": f.Inode}, &js)
		if js.Stat != st {
			t.Fatalf("setattr stat %+v, get_stat %+v", st, js.Stat)
		}
		bad := wire.AppendSetattr(nil, &wire.SetattrFields{Mask: 1 << 20})
		errno("setattr unknown mask bit", first(call(wire.OpSetattr, f.Inode, 0, bad)), 22)
		errno("setattr short payload", first(call(wire.OpSetattr, f.Inode, 0, bad[:10])), 22)

		// SET_XATTR, GET_XATTR, LIST_XATTR.
		errno("set_xattr", first(call(wire.OpSetXattr, f.Inode, 0, wire.AppendSetXattr(nil, "user.DOSATTRIB", []byte("v1")))), 0)
		errno("set_xattr create existing", first(call(wire.OpSetXattr, f.Inode, wire.XattrCreate, wire.AppendSetXattr(nil, "user.DOSATTRIB", []byte("v2")))), 17)
		errno("set_xattr replace missing", first(call(wire.OpSetXattr, f.Inode, wire.XattrReplace, wire.AppendSetXattr(nil, "user.none", nil))), 61)
		errno("set_xattr empty value", first(call(wire.OpSetXattr, f.Inode, 0, wire.AppendSetXattr(nil, "user.empty", nil))), 0)
		errno("set_xattr bad flags", first(call(wire.OpSetXattr, f.Inode, 4, wire.AppendSetXattr(nil, "user.x", nil))), 22)
		errno("set_xattr no name", first(call(wire.OpSetXattr, f.Inode, 0, []byte{0})), 22)
		h, data = call(wire.OpGetXattr, f.Inode, 0, []byte("user.DOSATTRIB"))
		if h.Errno != 0 || string(data) != "v1" {
			t.Fatalf("get_xattr: %+v %q", h, data)
		}
		errno("get_xattr missing", first(call(wire.OpGetXattr, f.Inode, 0, []byte("user.none"))), 61)
		h, data = call(wire.OpListXattr, f.Inode, 0, nil)
		if h.Errno != 0 || string(data) != "user.DOSATTRIB\x00user.empty\x00" {
			t.Fatalf("list_xattr: %+v %q", h, data)
		}
		var g wire.GetXattrResult
		rc.ok(wire.MethodGetXattr, obj{"mount_id": id, "inode": f.Inode, "name": "user.DOSATTRIB"}, &g)
		if string(g.Value) != "v1" {
			t.Fatalf("JSON get_xattr after binary set: %q", g.Value)
		}

		// Read-only mount: SETATTR and SET_XATTR are EROFS, OPEN for
		// writing too.
		ro := rc.mount("default", wire.MountReadOnly).MountID
		for _, c := range []struct {
			op      uint16
			off     uint64
			payload []byte
		}{{wire.OpSetattr, 0, wire.AppendSetattr(nil, &sf)}, {wire.OpSetXattr, 0, wire.AppendSetXattr(nil, "user.a", nil)}, {wire.OpOpen, 1, nil}} {
			nextID++
			bc.request(wire.RequestHeader{Opcode: c.op, ID: nextID, MountID: ro, Inode: f.Inode, Offset: c.off, Length: uint32(len(c.payload))}, c.payload)
			if h, _ := bc.reply(); h.Errno != 30 {
				t.Fatalf("%s on a read-only mount: %+v", wire.OpName(c.op), h)
			}
		}

		// CREATE_OPEN: the new file and a handle on it, in one request.
		h, data = call(wire.OpCreateOpen, 1, 0o640|wire.OpenReadWrite<<32, []byte("co"))
		if h.Errno != 0 || len(data) != 8+wire.StatExtSize {
			t.Fatalf("create_open: %+v %d bytes", h, len(data))
		}
		cfh := binary.LittleEndian.Uint64(data)
		cst, _ := wire.DecodeStatExt(data[8:])
		var cl wire.InodeResult
		rc.ok(wire.MethodLookup, obj{"mount_id": id, "inode": 1, "name": "co"}, &cl)
		if cfh == 0 || cst.Ino != cl.Inode || cst.Mode != 0o100640 || cst.Nlink != 1 {
			t.Fatalf("create_open: fh %d stat %+v, lookup %d", cfh, cst, cl.Inode)
		}
		errno("setlk write through the new handle", first(lk(cfh, wire.LockSetLk, wire.LockWrite, 0, 1, "c")), 0)
		errno("create_open existing", first(call(wire.OpCreateOpen, 1, 0o640, []byte("co"))), 17)
		errno("create_open bad access", first(call(wire.OpCreateOpen, 1, 0o640|3<<32, []byte("cx"))), 22)
		errno("create_open bad mode", first(call(wire.OpCreateOpen, 1, 1<<31, []byte("cx"))), 22)
		errno("create_open in a file", first(call(wire.OpCreateOpen, f.Inode, 0o640, []byte("cx"))), 20)
		errno("close the new handle", first(call(wire.OpClose, 0, cfh, nil)), 0)
		nextID++
		bc.request(wire.RequestHeader{Opcode: wire.OpCreateOpen, ID: nextID, MountID: ro, Inode: 1, Offset: 0o644, Length: 2}, []byte("cr"))
		if h, _ := bc.reply(); h.Errno != 30 {
			t.Fatalf("create_open on a read-only mount: %+v", h)
		}

		// CLOSE: the handles go; a second close is EBADF.
		errno("close", first(call(wire.OpClose, 0, fh, nil)), 0)
		errno("close again", first(call(wire.OpClose, 0, fh, nil)), 9)
		rc.ok(wire.MethodClose, obj{"mount_id": id, "fh": fh2}, nil)
		errno("close of a JSON-closed handle", first(call(wire.OpClose, 0, fh2, nil)), 9)

		// A SET_XATTR payload over its limit: an error, then the close.
		nextID++
		bc.request(wire.RequestHeader{Opcode: wire.OpSetXattr, ID: nextID, MountID: id, Inode: f.Inode, Length: wire.MaxSetXattrPayload + 1}, nil)
		if h, _ := bc.reply(); h.Errno != 7 {
			t.Fatalf("huge set_xattr: %+v", h)
		}
		bc.closed()
		d.Check(t)
	})
}
