package client

// A small in-process fake proxyfsd for testing the client's own machinery
// (multiplexing, reconnect, remount, uncertain retries, timeouts) in ways
// the real daemon cannot be made to misbehave. The real-daemon tests are
// in daemon_test.go.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

type fakeServer struct {
	t  *testing.T
	ln net.Listener

	mu       sync.Mutex
	conns    map[net.Conn]bool
	mounts   map[uint64]wire.MountParams
	nextID   uint64
	names    map[string]uint64    // path -> inode
	owners   map[uint64][2]uint32 // inode -> uid, gid of the mount that made it
	data     map[uint64][]byte
	nextIno  uint64
	dropOnce map[string]bool // method: execute, then drop the connection without replying
	stall    map[string]bool // method: never answer
	calls    map[string]int
	// extra serves methods the fake does not know (set before the
	// client connects): called without mu held, on a mounted mount id.
	extra map[string]func(ctx context.Context, params json.RawMessage) (any, error)
	wg    sync.WaitGroup
}

func newFakeServer(t *testing.T) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, conns: map[net.Conn]bool{}, mounts: map[uint64]wire.MountParams{}, nextID: 1000,
		names: map[string]uint64{}, owners: map[uint64][2]uint32{}, data: map[uint64][]byte{}, nextIno: 2,
		dropOnce: map[string]bool{}, stall: map[string]bool{}, calls: map[string]int{}}
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) serve(ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[nc] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handleConn(nc)
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
		}
	}()
}

func (s *fakeServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// restart drops every connection and forgets every mount, as a daemon
// restart does, keeping the files; the listener stays.
func (s *fakeServer) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mounts = map[uint64]wire.MountParams{}
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (s *fakeServer) handleConn(nc net.Conn) {
	br := bufio.NewReader(nc)
	magic, err := br.Peek(4)
	if err != nil {
		nc.Close()
		return
	}
	if string(magic) == wire.RequestMagic {
		s.serveBinary(nc, br)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := jsonrpc2.NewConn(ctx, jsonrpc2.NewBufferedStream(prefixConn{nc, br}, jsonrpc2.VSCodeObjectCodec{}),
		jsonrpc2.AsyncHandler(jsonrpc2.HandlerWithError(s.handleJSON).SuppressErrClosed()),
		jsonrpc2.SetLogger(nopLogger{}))
	<-conn.DisconnectNotify()
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func rpcErr(errno syscall.Errno, reason string) *jsonrpc2.Error {
	e := &jsonrpc2.Error{Code: int64(errno), Message: errno.Error()}
	e.SetError(wire.ErrorData{Errno: int(errno), Name: wire.ErrnoName(errno), Reason: reason})
	return e
}

func (s *fakeServer) handleJSON(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) (any, error) {
	var p struct {
		MountID uint64 `json:"mount_id"`
		Path    string `json:"path"`
		Volume  string `json:"volume"`
		UID     uint32 `json:"uid"`
		GID     uint32 `json:"gid"`
	}
	if req.Params != nil {
		_ = json.Unmarshal(*req.Params, &p)
	}
	path := strings.TrimPrefix(p.Path, "/")
	s.mu.Lock()
	s.calls[req.Method]++
	if s.stall[req.Method] {
		s.mu.Unlock()
		<-conn.DisconnectNotify()
		return nil, nil
	}
	drop := s.dropOnce[req.Method]
	delete(s.dropOnce, req.Method)
	var res any
	var err error
	mnt, mounted := s.mounts[p.MountID]
	if f := s.extra[req.Method]; f != nil && mounted {
		s.mu.Unlock()
		var raw json.RawMessage
		if req.Params != nil {
			raw = *req.Params
		}
		return f(ctx, raw)
	}
	if req.Method != wire.MethodPing && req.Method != wire.MethodMount && !mounted {
		err = rpcErr(syscall.EINVAL, wire.ReasonBadMount)
	} else {
		switch req.Method {
		case wire.MethodPing:
			res = wire.PingResult{Version: 1, Server: "fake"}
		case wire.MethodMount:
			s.nextID++
			s.mounts[s.nextID] = wire.MountParams{Volume: p.Volume, UID: p.UID, GID: p.GID}
			res = wire.MountResult{MountID: s.nextID, RootInode: 1, MaxIOSize: 1024, MaxInflight: 256}
		case wire.MethodUnmount:
			delete(s.mounts, p.MountID)
			res = wire.Empty{}
		case wire.MethodCreatePath:
			if _, ok := s.names[path]; ok {
				err = rpcErr(syscall.EEXIST, "")
				break
			}
			s.nextIno++
			s.names[path] = s.nextIno
			s.owners[s.nextIno] = [2]uint32{mnt.UID, mnt.GID}
			res = wire.NewInodeResult{Inode: s.nextIno, Stat: wire.Stat{Ino: s.nextIno, Mode: syscall.S_IFREG | 0o644, Nlink: 1,
				UID: mnt.UID, GID: mnt.GID}}
		case wire.MethodGetStatPath:
			ino, ok := s.names[path]
			if !ok {
				err = rpcErr(syscall.ENOENT, "")
				break
			}
			res = wire.StatResult{Stat: wire.Stat{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: uint64(len(s.data[ino])),
				UID: s.owners[ino][0], GID: s.owners[ino][1]}}
		case wire.MethodUnlinkPath:
			if _, ok := s.names[path]; !ok {
				err = rpcErr(syscall.ENOENT, "")
				break
			}
			delete(s.names, path)
			res = wire.Empty{}
		default:
			err = &jsonrpc2.Error{Code: jsonrpc2.CodeMethodNotFound, Message: "no such method"}
		}
	}
	s.mu.Unlock()
	if drop {
		conn.Close()
		return nil, jsonrpc2.ErrClosed
	}
	return res, err
}

func (s *fakeServer) serveBinary(nc net.Conn, br *bufio.Reader) {
	defer nc.Close()
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	var hb [wire.RequestHeaderSize]byte
	for {
		h, err := wire.ReadRequest(br, &hb)
		if err != nil {
			return
		}
		var payload []byte
		if h.Opcode == wire.OpWrite {
			payload = make([]byte, h.Length)
			if _, err := io.ReadFull(br, payload); err != nil {
				return
			}
		}
		if h.Opcode == wire.OpOpen || h.Opcode == wire.OpClose {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rh, out := s.binaryHandle(h)
				wmu.Lock()
				defer wmu.Unlock()
				_, _ = nc.Write(append(wire.AppendReply(nil, rh), out...))
			}()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Complete out of order.
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			rh := wire.ReplyHeader{Opcode: h.Opcode, ID: h.ID}
			var out []byte
			s.mu.Lock()
			method := wire.MethodRead
			if h.Opcode == wire.OpWrite {
				method = wire.MethodWrite
			}
			s.calls[method]++
			stall := s.stall[method]
			if _, ok := s.mounts[h.MountID]; !ok {
				rh.Errno, rh.Flags = uint32(syscall.EINVAL), wire.ReplyFlagBadMount
			} else if h.Inode == 999 {
				rh.Errno = uint32(syscall.ENOENT)
			} else if h.Opcode == wire.OpWrite {
				d := s.data[h.Inode]
				if end := int(h.Offset) + len(payload); end > len(d) {
					d = append(d, make([]byte, end-len(d))...)
				}
				copy(d[h.Offset:], payload)
				s.data[h.Inode] = d
				rh.Length = uint32(len(payload))
			} else {
				d := s.data[h.Inode]
				if int(h.Offset) < len(d) {
					out = append(out, d[h.Offset:min(len(d), int(h.Offset)+int(h.Length))]...)
				}
				rh.Length = uint32(len(out))
			}
			s.mu.Unlock()
			if stall {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			_, _ = nc.Write(append(wire.AppendReply(nil, rh), out...))
		}()
	}
}

// binaryHandle answers a binary OPEN or CLOSE with the test's JSON handler
// of open or close (extra), as the daemon runs the JSON form's code.
func (s *fakeServer) binaryHandle(h wire.RequestHeader) (wire.ReplyHeader, []byte) {
	rh := wire.ReplyHeader{Opcode: h.Opcode, ID: h.ID}
	method := wire.OpName(h.Opcode)
	s.mu.Lock()
	s.calls[method]++
	_, mounted := s.mounts[h.MountID]
	f := s.extra[method]
	s.mu.Unlock()
	if !mounted {
		rh.Errno, rh.Flags = uint32(syscall.EINVAL), wire.ReplyFlagBadMount
		return rh, nil
	}
	if f == nil {
		rh.Errno = uint32(syscall.ENOSYS)
		return rh, nil
	}
	var params any = wire.CloseParams{MountID: h.MountID, Fh: h.Offset}
	if h.Opcode == wire.OpOpen {
		params = wire.OpenParams{MountID: h.MountID, Inode: h.Inode, Flags: uint32(h.Offset & 3)}
	}
	raw, _ := json.Marshal(params)
	res, err := f(context.Background(), raw)
	if err != nil {
		var je *jsonrpc2.Error
		rh.Errno = uint32(syscall.EIO)
		if errors.As(err, &je) {
			rh.Errno = uint32(je.Code)
		}
		return rh, nil
	}
	var out []byte
	if or, ok := res.(wire.OpenResult); ok && h.Opcode == wire.OpOpen {
		out = binary.LittleEndian.AppendUint64(nil, or.Fh)
		out = wire.AppendStatRecord(out, &or.Stat, h.Flags)
	}
	rh.Length = uint32(len(out))
	return rh, out
}
