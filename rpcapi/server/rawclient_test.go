package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// rawConn is a minimal JSON-RPC client written against PROTOCOL.md, so
// that the tests check the bytes on the wire, not a client library.
type rawConn struct {
	t      *testing.T
	c      net.Conn
	r      *bufio.Reader
	nextID int
}

func dial(t *testing.T, network, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c), nextID: 100}
}

// sendRaw writes body with a Content-Length header.
func (rc *rawConn) sendRaw(body string) {
	rc.t.Helper()
	rc.write(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// readMsg reads one framed message and returns its body.
func (rc *rawConn) readMsg() ([]byte, error) {
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	length := -1
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(line, "\r\n") {
			return nil, fmt.Errorf("header line %q does not end with CRLF", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			if length, err = strconv.Atoi(v); err != nil {
				return nil, err
			}
		}
	}
	if length < 0 {
		return nil, fmt.Errorf("no Content-Length")
	}
	body := make([]byte, length)
	_, err := io.ReadFull(rc.r, body)
	return body, err
}

// reply is a decoded JSON-RPC reply.
type reply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    *wire.ErrorData `json:"data"`
}

func (rc *rawConn) recv() reply {
	rc.t.Helper()
	body, err := rc.readMsg()
	if err != nil {
		rc.t.Fatalf("read reply: %v", err)
	}
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		rc.t.Fatalf("reply %s: %v", body, err)
	}
	if r.JSONRPC != "2.0" {
		rc.t.Fatalf("reply %s: jsonrpc member %q", body, r.JSONRPC)
	}
	if (r.Error == nil) == (r.Result == nil) {
		rc.t.Fatalf("reply %s: want exactly one of result and error", body)
	}
	return r
}

// send sends a request and returns its id.
func (rc *rawConn) send(method string, params any) int {
	rc.t.Helper()
	rc.nextID++
	p, err := json.Marshal(params)
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, rc.nextID, method, p))
	return rc.nextID
}

// call sends a request and waits for its reply.
func (rc *rawConn) call(method string, params any) reply {
	rc.t.Helper()
	id := rc.send(method, params)
	r := rc.recv()
	if string(r.ID) != strconv.Itoa(id) {
		rc.t.Fatalf("%s: reply id %s, want %d", method, r.ID, id)
	}
	return r
}

// ok calls method, fails the test on an error, and decodes the result
// into out (if not nil).
func (rc *rawConn) ok(method string, params, out any) {
	rc.t.Helper()
	r := rc.call(method, params)
	if r.Error != nil {
		rc.t.Fatalf("%s %v: error %+v (data %+v)", method, params, r.Error, r.Error.Data)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			rc.t.Fatalf("%s: result %s: %v", method, r.Result, err)
		}
	}
}

// fails calls method and checks that it fails with errno name (and the
// given JSON-RPC code; 0 means the errno's number).
func (rc *rawConn) fails(method string, params any, name string, code int64) *rpcError {
	rc.t.Helper()
	r := rc.call(method, params)
	return rc.checkErr(r, method, name, code)
}

func (rc *rawConn) checkErr(r reply, method, name string, code int64) *rpcError {
	rc.t.Helper()
	if r.Error == nil {
		rc.t.Fatalf("%s: succeeded with %s, want %s", method, r.Result, name)
	}
	e := r.Error
	if e.Data == nil || e.Data.Name != name {
		rc.t.Fatalf("%s: error %+v data %+v, want %s", method, e, e.Data, name)
	}
	if code == 0 {
		code = int64(e.Data.Errno)
	}
	if e.Code != code {
		rc.t.Fatalf("%s: code %d, want %d (%+v)", method, e.Code, code, e)
	}
	switch e.Data.Reason {
	case "", wire.ReasonBadMount, wire.ReasonGrace, wire.ReasonNoGrace, wire.ReasonBusy:
	default:
		rc.t.Fatalf("%s: unexpected reason %q", method, e.Data.Reason)
	}
	return e
}

// closed checks that the server closes the connection without replying.
func (rc *rawConn) closed() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := rc.r.ReadByte()
	if err == nil {
		rc.t.Fatalf("connection still open: got byte %q", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		rc.t.Fatal("connection still open after 10s")
	}
}

// mount mounts volume as root (uid 0: the tests act on a fresh volume,
// whose root directory is root's) and returns the mount result.
func (rc *rawConn) mount(volume string, options uint64) wire.MountResult {
	rc.t.Helper()
	var m wire.MountResult
	rc.ok(wire.MethodMount, map[string]any{"volume": volume, "options": options, "user": "tester", "uid": 0, "gid": 0}, &m)
	return m
}
