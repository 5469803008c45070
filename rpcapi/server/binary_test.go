package server_test

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestBinaryChannel covers the binary data channel: pipelined requests
// completed out of order, the max I/O size, broken streams, bad mounts,
// and data written on one channel read on the other.
func TestBinaryChannel(t *testing.T) {
	const maxIO = 1 << 20
	transports(t, daemontest.Options{MaxIOBytes: maxIO, MaxInflightPerConn: 8}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		m := rc.mount("default", 0)
		if m.MaxIOSize != maxIO || m.MaxInflight != 8 {
			t.Fatalf("mount %+v", m)
		}
		id := m.MountID
		var f, big wire.NewInodeResult
		rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)
		rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/big", "mode": 0o644}, &big)

		// JSON write, binary read.
		rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": []byte("from json")}, nil)
		bc := dialBin(t, network, addr)
		bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 1, MountID: id, Inode: f.Inode, Length: 100}, nil)
		if h, data := bc.reply(); h.Errno != 0 || h.ID != 1 || h.Length != 9 || string(data) != "from json" {
			t.Fatalf("binary read of JSON data: %+v %q", h, data)
		}

		// Pipelined writes of random data at many offsets (more than
		// max_inflight: back-pressure), then pipelined reads; replies are
		// matched by id, in any order.
		rnd := rand.New(rand.NewSource(1))
		content := make([]byte, 4*maxIO)
		rnd.Read(content)
		const chunk = 64 << 10
		n := len(content) / chunk
		go func() { // not the test goroutine: no t.Fatal here
			for i := 0; i < n; i++ {
				frame := wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpWrite, ID: uint64(1000 + i), MountID: id,
					Inode: big.Inode, Offset: uint64(i * chunk), Length: chunk})
				if _, err := bc.c.Write(append(frame, content[i*chunk:(i+1)*chunk]...)); err != nil {
					t.Errorf("pipelined binary write: %v", err)
					return
				}
			}
		}()
		seen := map[uint64]bool{}
		for i := 0; i < n; i++ {
			h, _ := bc.reply()
			if h.Errno != 0 || h.Opcode != wire.OpWrite || h.Length != chunk || h.ID < 1000 || h.ID >= uint64(1000+n) || seen[h.ID] {
				t.Fatalf("write reply %+v", h)
			}
			seen[h.ID] = true
		}
		// One full-size read first, then small ones: the small ones may
		// overtake it.
		bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 5000, MountID: id, Inode: big.Inode, Length: maxIO}, nil)
		for i := 0; i < 16; i++ {
			bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: uint64(5001 + i), MountID: id, Inode: big.Inode,
				Offset: uint64(i * 4096), Length: 4096}, nil)
		}
		order := []uint64{}
		for i := 0; i < 17; i++ {
			h, data := bc.reply()
			if h.Errno != 0 {
				t.Fatalf("read reply %+v", h)
			}
			off := 0
			if h.ID > 5000 {
				off = int(h.ID-5001) * 4096
			}
			if !bytes.Equal(data, content[off:off+len(data)]) || (h.ID == 5000 && len(data) != maxIO) || (h.ID > 5000 && len(data) != 4096) {
				t.Fatalf("read %d: %d bytes, wrong data", h.ID, len(data))
			}
			order = append(order, h.ID)
		}
		t.Logf("binary reply order: %v", order)

		// Binary data through JSON.
		var rr wire.ReadResult
		rc.ok(wire.MethodRead, obj{"mount_id": id, "inode": big.Inode, "offset": 3 * maxIO, "length": 1000}, &rr)
		if !bytes.Equal(rr.Data, content[3*maxIO:3*maxIO+1000]) {
			t.Fatal("JSON read of binary-written data differs")
		}
		var sr wire.StatResult
		rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": big.Inode}, &sr)
		if sr.Stat.Size != uint64(len(content)) {
			t.Fatalf("size %d after binary writes", sr.Stat.Size)
		}

		// Read past EOF: 0 bytes. Errors: ENOENT, EISDIR, bad mount.
		bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 20, MountID: id, Inode: f.Inode, Offset: 1 << 30, Length: 10}, nil)
		if h, data := bc.reply(); h.Errno != 0 || h.Length != 0 || len(data) != 0 {
			t.Errorf("read past EOF: %+v", h)
		}
		for _, c := range []struct {
			h     wire.RequestHeader
			errno uint32
			flags uint32
		}{
			{wire.RequestHeader{Opcode: wire.OpRead, ID: 21, MountID: id, Inode: 999999, Length: 10}, 2, 0},
			{wire.RequestHeader{Opcode: wire.OpWrite, ID: 22, MountID: id, Inode: 999999, Length: 0}, 2, 0},
			{wire.RequestHeader{Opcode: wire.OpRead, ID: 23, MountID: id, Inode: 1, Length: 10}, 21, 0},
			{wire.RequestHeader{Opcode: wire.OpRead, ID: 24, MountID: id ^ 1, Inode: f.Inode, Length: 10}, 22, wire.ReplyFlagBadMount},
			{wire.RequestHeader{Opcode: wire.OpWrite, ID: 25, MountID: 0, Inode: f.Inode, Length: 0}, 22, wire.ReplyFlagBadMount},
			// Oversized READ: EINVAL, connection stays usable.
			{wire.RequestHeader{Opcode: wire.OpRead, ID: 26, MountID: id, Inode: f.Inode, Length: maxIO + 1}, 22, 0},
			{wire.RequestHeader{Opcode: wire.OpRead, ID: 27, MountID: id, Inode: f.Inode, Length: 0xffffffff}, 22, 0},
		} {
			bc.request(c.h, nil)
			h, _ := bc.reply()
			if h.ID != c.h.ID || h.Opcode != c.h.Opcode || h.Errno != c.errno || h.Flags != c.flags || h.Length != 0 {
				t.Errorf("request %+v: reply %+v, want errno %d flags %d", c.h, h, c.errno, c.flags)
			}
		}
		bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 28, MountID: id, Inode: f.Inode, Length: 4}, nil)
		if h, data := bc.reply(); h.Errno != 0 || string(data) != "from" {
			t.Errorf("read after errors: %+v %q", h, data)
		}

		// Oversized WRITE: EINVAL reply, then the connection closes.
		bc.request(wire.RequestHeader{Opcode: wire.OpWrite, ID: 30, MountID: id, Inode: f.Inode, Length: maxIO + 1}, nil)
		if h, _ := bc.reply(); h.ID != 30 || h.Errno != 22 {
			t.Errorf("oversized write: %+v", h)
		}
		bc.closed()

		// Broken streams close without a reply.
		good := wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpRead, ID: 1, MountID: id, Inode: f.Inode, Length: 4})
		for name, frame := range map[string][]byte{
			"magic":   append([]byte("XXXX"), good[4:]...),
			"version": append(append([]byte("PFSB"), 2, 0), good[6:]...),
			"opcode":  append(append(bytes.Clone(good[:6]), 0xee, 0), good[8:]...),
			"flags":   append(bytes.Clone(good[:44]), 8, 0, 0, 0),
		} {
			bc := dialBin(t, network, addr)
			bc.write(good)
			if h, data := bc.reply(); h.Errno != 0 || string(data) != "from" {
				t.Fatalf("%s: first frame: %+v", name, h)
			}
			bc.write(frame)
			bc.closed()
		}
		// A truncated frame followed by EOF is not a crash either.
		bc = dialBin(t, network, addr)
		bc.write(good[:20])
		bc.c.Close()

		rc.ok(wire.MethodPing, obj{}, nil)
	})
}

// TestBinarySendfileReads covers large binary READs, which the daemon
// sends from the data file with sendfile(2): holes, a sparse tail past the
// data file's end (sent as zeros), a file with no data at all, a read
// crossing the end of the file, and the same reads on both transports.
func TestBinarySendfileReads(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		id := rc.mount("default", 0).MountID
		var f, empty wire.NewInodeResult
		rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/sparse", "mode": 0o644}, &f)
		rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/empty", "mode": 0o644}, &empty)
		const size = 1 << 20
		want := make([]byte, size)
		copy(want, "head")
		copy(want[300<<10:], "middle")
		rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": []byte("head")}, nil)
		rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 300 << 10, "data": []byte("middle")}, nil)
		rc.ok(wire.MethodResize, obj{"mount_id": id, "inode": f.Inode, "size": size}, nil)
		rc.ok(wire.MethodResize, obj{"mount_id": id, "inode": empty.Inode, "size": 200 << 10}, nil)

		bc := dialBin(t, network, addr)
		for i, r := range []struct {
			ino       uint64
			off, n    uint64
			wantBytes []byte
		}{
			{f.Inode, 0, size, want},                                 // data, hole, data, sparse tail
			{f.Inode, 100 << 10, 256 << 10, want[100<<10 : 356<<10]}, // hole into data
			{f.Inode, 900 << 10, 512 << 10, want[900<<10:]},          // tail only, crosses EOF
			{f.Inode, size - 10, 128 << 10, want[size-10:]},          // below the sendfile size
			{empty.Inode, 0, 256 << 10, make([]byte, 200<<10)},       // no data file at all
			{f.Inode, size, 128 << 10, nil},                          // at EOF
		} {
			bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: uint64(i + 1), MountID: id, Inode: r.ino, Offset: r.off, Length: uint32(r.n)}, nil)
			h, data := bc.reply()
			if h.Errno != 0 || h.ID != uint64(i+1) || int(h.Length) != len(r.wantBytes) || !bytes.Equal(data, r.wantBytes) {
				t.Fatalf("read %d (%d bytes at %d): %+v, %d bytes, data equal %v", i, r.n, r.off, h, len(data), bytes.Equal(data, r.wantBytes))
			}
		}
		// The stream is still in step: a small read after them.
		bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 99, MountID: id, Inode: f.Inode, Length: 4}, nil)
		if h, data := bc.reply(); h.Errno != 0 || string(data) != "head" {
			t.Fatalf("read after: %+v %q", h, data)
		}
	})
}
