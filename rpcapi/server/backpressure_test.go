package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestJSONBackPressure checks that a JSON-RPC client which pipelines reads
// and does not read the replies stops being read: the server runs only
// the few reads whose replies fit in the connection's bound (and the
// socket buffers), instead of running all of them and holding every reply
// in memory. Other connections are served meanwhile, and once the client
// reads, every reply arrives.
func TestJSONBackPressure(t *testing.T) {
	const (
		size = 1 << 20 // 1 MiB: 1.4 MB of base64 per reply
		n    = 64
		// Most reads that may run before the client reads a reply: one
		// within the bound, a few in the socket buffers. Without
		// back-pressure all n run.
		most = 16
	)
	d := daemontest.Start(t, daemontest.Options{Metrics: true, LogLevel: "info"})
	rc := dial(t, "unix", d.UnixPath)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/big", "mode": 0o644}, &f)
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": data}, nil)

	readBytes := func() int {
		return int(scrape(t, d)["proxyfs_read_bytes_total{channel=json}"])
	}
	before := readBytes()

	var batch strings.Builder
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"read","params":{"mount_id":%d,"inode":%d,"offset":0,"length":%d}}`,
			i, id, f.Inode, size)
		fmt.Fprintf(&batch, "Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	rc.write(batch.String())

	// Wait until the server stops running reads (the count holds still
	// for a second), or fail as soon as it has run too many.
	ran, stable := 0, 0
	for deadline := time.Now().Add(60 * time.Second); stable < 10; {
		time.Sleep(100 * time.Millisecond)
		now := (readBytes() - before) / size
		if now > most {
			t.Fatalf("the server ran %d of %d pipelined 1 MiB reads whose replies were not read (want at most %d)", now, n, most)
		}
		if now == ran {
			stable++
		} else {
			ran, stable = now, 0
		}
		if time.Now().After(deadline) {
			t.Fatal("the count of reads run never settled")
		}
	}
	t.Logf("%d of %d pipelined reads ran while the client read nothing", ran, n)

	// A slow reader only slows itself.
	other := dial(t, "tcp", d.TCPAddr)
	other.ok(wire.MethodPing, obj{}, nil)
	other.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": f.Inode}, nil)

	// Every reply arrives, whole. (Compared as bytes: decoding megabytes
	// of JSON is slow under the race detector.)
	b64 := []byte(`"data":"` + base64.StdEncoding.EncodeToString(data) + `"`)
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		body, err := rc.readMsg()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !bytes.Contains(body, b64) {
			t.Fatalf("reply %d is not the file's data: %.200s", i, body)
		}
		var r struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(bytes.Replace(body, b64, []byte(`"data":""`), 1), &r); err != nil {
			t.Fatal(err)
		}
		if seen[string(r.ID)] {
			t.Fatalf("reply %s twice", r.ID)
		}
		seen[string(r.ID)] = true
	}
	if got := (readBytes() - before) / size; got != n {
		t.Errorf("%d reads counted, want %d", got, n)
	}
}

// TestJSONReadFitsMessage checks that a JSON read whose base64 reply could
// exceed max_message_bytes is EINVAL, and that the longest one allowed,
// 3 * floor((max_message_bytes - 1024) / 4) bytes, has a reply within the
// limit; a very long request id lowers the limit.
func TestJSONReadFitsMessage(t *testing.T) {
	const maxMsg = 64 << 10
	const limit = 3 * ((maxMsg - 1024) / 4) // 48384
	d := daemontest.Start(t, daemontest.Options{MaxMessageBytes: maxMsg, MaxIOBytes: 1 << 20})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)
	for off := 0; off < 2*limit; off += 16 << 10 {
		rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": off, "data": bytes.Repeat([]byte{'x'}, 16<<10)}, nil)
	}

	read := func(reqID string, length int) ([]byte, reply) {
		t.Helper()
		rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"read","params":{"mount_id":%d,"inode":%d,"offset":0,"length":%d}}`,
			reqID, id, f.Inode, length))
		body, err := rc.readMsg()
		if err != nil {
			t.Fatalf("read of %d: %v", length, err)
		}
		var r reply
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if string(r.ID) != reqID {
			t.Fatalf("reply id %.20s, want %.20s", r.ID, reqID)
		}
		return body, r
	}

	body, r := read("1", limit)
	if r.Error != nil {
		t.Fatalf("read of %d (the limit): %+v", limit, r.Error)
	}
	if len(body) > maxMsg {
		t.Errorf("reply of %d bytes exceeds max_message_bytes %d", len(body), maxMsg)
	}
	var rr wire.ReadResult
	if err := json.Unmarshal(r.Result, &rr); err != nil || len(rr.Data) != limit {
		t.Errorf("read of %d: %d bytes, %v", limit, len(rr.Data), err)
	}

	_, r = read("2", limit+1)
	if r.Error == nil {
		t.Fatalf("read of %d (over the limit) succeeded with %d bytes of reply", limit+1, len(r.Result))
	}
	e := rc.checkErr(r, "read over the limit", "EINVAL", 0)
	if !strings.Contains(e.Message, "max_message_bytes") || !strings.Contains(e.Message, fmt.Sprint(limit)) {
		t.Errorf("error message %q: want max_message_bytes and the limit", e.Message)
	}
	if e.Data.Reason != "" {
		t.Errorf("reason %q", e.Data.Reason)
	}

	// Well over: a reply of 80 KB, which the server used to send.
	_, r = read("4", 60000)
	if r.Error == nil {
		t.Fatalf("read of 60000 succeeded with %d bytes of reply (max_message_bytes %d)", len(r.Result), maxMsg)
	}
	rc.checkErr(r, "read well over the limit", "EINVAL", 0)

	// An id of 3000 bytes (as JSON) takes 2000 more bytes of the reply.
	longID := `"` + strings.Repeat("i", 2998) + `"`
	_, r = read(longID, limit)
	if r.Error == nil {
		t.Fatalf("read of %d with a long id succeeded with %d bytes of reply", limit, len(r.Result))
	}
	rc.checkErr(r, "read at the limit with a long id", "EINVAL", 0)
	shorter := 3 * ((maxMsg - 64 - len(longID)) / 4)
	body, r = read(longID, shorter)
	if r.Error != nil {
		t.Fatalf("read of %d with a long id: %+v", shorter, r.Error)
	}
	if len(body) > maxMsg {
		t.Errorf("reply of %d bytes exceeds max_message_bytes %d", len(body), maxMsg)
	}

	// Over max_io_size it is the max_io_size error, as before.
	_, r = read("3", 1<<20+1)
	if e := rc.checkErr(r, "read over max_io_size", "EINVAL", 0); !strings.Contains(e.Message, "max_io_size") {
		t.Errorf("error message %q", e.Message)
	}
	rc.ok(wire.MethodPing, obj{}, nil)
}
