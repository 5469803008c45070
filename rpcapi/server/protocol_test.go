package server_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// transports runs fn once over TCP and once over the Unix socket, each
// with its own daemon.
func transports(t *testing.T, opts daemontest.Options, fn func(t *testing.T, d *daemontest.Daemon, network, addr string)) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			d := daemontest.Start(t, opts)
			addr := d.TCPAddr
			if network == "unix" {
				addr = d.UnixPath
			}
			fn(t, d, network, addr)
			d.Check(t)
		})
	}
}

func sameJSON(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: want %s: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// unhex decodes the hex dumps of PROTOCOL.md (whitespace and comments
// after the bytes are ignored).
func unhex(t *testing.T, dump string) []byte {
	t.Helper()
	var out []byte
	for _, line := range strings.Split(dump, "\n") {
		for _, f := range strings.Fields(line) {
			if len(f) != 2 {
				break // the comment column
			}
			b, err := hex.DecodeString(f)
			if err != nil {
				break
			}
			out = append(out, b...)
		}
	}
	return out
}

// TestProtocolExamples sends the literal examples of PROTOCOL.md and
// checks the literal replies (mount ids are random: the example's id is
// replaced by the real one).
func TestProtocolExamples(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)

		// Framing example, byte for byte.
		rc.write("Content-Length: 93\r\n\r\n" +
			`{"jsonrpc":"2.0","id":1,"method":"mount","params":{"volume":"default","uid":1000,"gid":1000}}`)
		r := rc.recv()
		var m wire.MountResult
		if err := json.Unmarshal(r.Result, &m); err != nil || string(r.ID) != "1" {
			t.Fatalf("framing example: %+v %v", r, err)
		}
		if m.MountID == 0 || m.MountID >= 1<<53 || m.RootInode != 1 || m.MaxIOSize != 8<<20 || m.MaxInflight != 256 {
			t.Fatalf("mount result %+v", m)
		}

		// Example session. As the example says, the volume's root belongs
		// to alice: an administrator (uid 0) gave it to her.
		admin := rc.mount("default", 0)
		rc.ok(wire.MethodChownPath, map[string]any{"mount_id": admin.MountID, "path": "/", "uid": 1000, "gid": 1000}, nil)
		rc.write("Content-Length: 108\r\n\r\n" +
			`{"jsonrpc":"2.0","id":1,"method":"mount","params":{"volume":"default","user":"alice","uid":1000,"gid":1000}}`)
		r = rc.recv()
		if err := json.Unmarshal(r.Result, &m); err != nil {
			t.Fatal(err)
		}
		id := m.MountID
		sameJSON(t, "mount reply", mustMarshal(r),
			fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"result":{"mount_id":%d,"root_inode":1,"max_io_size":8388608,"max_inflight":256,"uid":1000,"gid":1000}}`, id))

		rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"create_path","params":{"mount_id":%d,"path":"/hello.txt","mode":420}}`, id))
		r = rc.recv()
		var cr wire.NewInodeResult
		if err := json.Unmarshal(r.Result, &cr); err != nil || string(r.ID) != "2" {
			t.Fatalf("create_path: %+v %v", r, err)
		}
		if cr.Inode != 2 || cr.Stat.Ino != 2 || cr.Stat.Mode != 33188 || cr.Stat.Nlink != 1 ||
			cr.Stat.UID != 1000 || cr.Stat.GID != 1000 || cr.Stat.Size != 0 || cr.Stat.Dev == 0 ||
			cr.Stat.Crtime.Sec == 0 {
			t.Fatalf("create_path result %+v", cr)
		}

		rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"write","params":{"mount_id":%d,"inode":2,"offset":0,"data":"aGVsbG8gd29ybGQ="}}`, id))
		sameJSON(t, "write reply", mustMarshal(rc.recv()), `{"jsonrpc":"2.0","id":3,"result":{"size":11}}`)

		rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":4,"method":"lookup","params":{"mount_id":%d,"inode":1,"name":"nope"}}`, id))
		body, err := rc.readMsg()
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "lookup error reply", body,
			`{"jsonrpc":"2.0","id":4,"error":{"code":2,"message":"lookup 1/\"nope\": no such file or directory","data":{"errno":2,"name":"ENOENT"}}}`)

		// Binary example: cut the file to 0 first so that it holds
		// exactly "hello" afterwards, as in the example.
		rc.ok(wire.MethodResize, map[string]any{"mount_id": id, "inode": 2, "size": 0}, nil)
		bc := dialBin(t, network, addr)
		req := unhex(t, `
50 46 53 42  01 00  02 00  07 00 00 00 00 00 00 00     magic, version 1, WRITE, id 7
2d ce d8 18 01 00 00 00  02 00 00 00 00 00 00 00        mount id, inode 2
00 00 00 00 00 00 00 00  05 00 00 00  00 00 00 00        offset 0, length 5, flags 0
68 65 6c 6c 6f                                          "hello"
`)
		if len(req) != 53 || binary.LittleEndian.Uint64(req[16:]) != 4711829037 {
			t.Fatalf("example request decodes to %d bytes, mount id %d", len(req), binary.LittleEndian.Uint64(req[16:]))
		}
		binary.LittleEndian.PutUint64(req[16:], id)
		bc.write(req)
		bc.expect(unhex(t, `
50 46 53 52  01 00  02 00  07 00 00 00 00 00 00 00     magic, version 1, WRITE, id 7
00 00 00 00  00 00 00 00  05 00 00 00  00 00 00 00     errno 0, flags 0, length 5, reserved
`))
		// The READ: same header, opcode 1, id 8, length 16, no payload.
		rd := bytes.Clone(req[:48])
		rd[6], rd[8], rd[40] = 1, 8, 16
		bc.write(rd)
		bc.expect(append(unhex(t, `
50 46 53 52  01 00  01 00  08 00 00 00 00 00 00 00
00 00 00 00  00 00 00 00  05 00 00 00  00 00 00 00
`), "hello"...))

		// And JSON sees what the binary channel wrote.
		var rr wire.ReadResult
		rc.ok(wire.MethodRead, map[string]any{"mount_id": id, "inode": 2, "offset": 0, "length": 100}, &rr)
		if string(rr.Data) != "hello" {
			t.Fatalf("JSON read after binary write: %q", rr.Data)
		}
	})
}

func mustMarshal(r reply) []byte {
	m := map[string]any{"jsonrpc": r.JSONRPC, "id": r.ID}
	if r.Error != nil {
		m["error"] = r.Error
	} else {
		m["result"] = r.Result
	}
	b, _ := json.Marshal(m)
	return b
}

// binConn is a raw binary channel connection.
type binConn struct {
	t *testing.T
	*rawConn
}

func dialBin(t *testing.T, network, addr string) *binConn {
	return &binConn{t: t, rawConn: dial(t, network, addr)}
}

func (b *binConn) write(p []byte) {
	b.t.Helper()
	b.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.c.Write(p); err != nil {
		b.t.Fatalf("binary write: %v", err)
	}
}

func (b *binConn) expect(want []byte) {
	b.t.Helper()
	got := make([]byte, len(want))
	b.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b.r, got); err != nil {
		b.t.Fatalf("binary read: %v", err)
	}
	if !bytes.Equal(got, want) {
		b.t.Fatalf("binary reply\n got % x\nwant % x", got, want)
	}
}

// request sends one request frame.
func (b *binConn) request(h wire.RequestHeader, payload []byte) {
	b.t.Helper()
	b.write(append(wire.AppendRequest(nil, h), payload...))
}

// reply reads one reply frame and its payload.
func (b *binConn) reply() (wire.ReplyHeader, []byte) {
	b.t.Helper()
	var hb [wire.ReplyHeaderSize]byte
	b.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	h, err := wire.ReadReply(b.r, &hb)
	if err != nil {
		b.t.Fatalf("binary reply: %v", err)
	}
	var data []byte
	if h.Opcode != wire.OpWrite && h.Errno == 0 && h.Length > 0 {
		data = make([]byte, h.Length)
		if _, err := io.ReadFull(b.r, data); err != nil {
			b.t.Fatalf("binary reply payload: %v", err)
		}
	}
	return h, data
}
