package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
	_ "github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// fuzzServer opens a server on a memory volume whose error-level logs
// (a recovered panic, an error mapped to EIO) are collected.
func fuzzServer(t testing.TB) (*Server, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.ErrorLevel)
	cfg, err := conf.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Volumes = []conf.Volume{{Name: "default", Engine: "memory", Path: t.TempDir()}}
	s, err := Open(context.Background(), cfg, Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.mounts.Close(); s.closeVolumes() })
	return s, logs
}

func failOnErrorLogs(t *testing.T, logs *observer.ObservedLogs, what string) {
	t.Helper()
	for _, e := range logs.TakeAll() {
		t.Fatalf("%s: logged at error level: %s %v", what, e.Message, e.ContextMap())
	}
}

// FuzzDispatch runs any method with any params. "MID" in the params is
// replaced by a live mount id, "FID" by a file's inode. A call may fail
// with any errno, but must never panic (dispatch recovers panics and logs
// them at error level, which fails the fuzz) nor hit an unexpected error.
func FuzzDispatch(f *testing.F) {
	for m := range methods {
		f.Add(m, `{"mount_id":MID,"inode":1,"name":"x","mode":420,"path":"/x","target":"y","size":3,"offset":0,"length":4,"data":"eA==","prev_cookie":-1}`)
	}
	f.Add("read", `{"mount_id":MID,"inode":FID,"offset":18446744073709551615,"length":8388608}`)
	f.Add("write", `{"mount_id":MID,"inode":FID,"offset":1125899906842623,"data":"eHh4"}`)
	f.Add("setattr", `{"mount_id":MID,"inode":FID,"mask":127,"size":1,"mode":4095,"uid":1,"gid":2,"atime":{"sec":-1,"nsec":0},"mtime":null,"crtime":{"sec":1,"nsec":999999999}}`)
	f.Add("rename_path", `{"mount_id":MID,"src_path":"/f","dst_path":"/f/../../f"}`)
	f.Add("mount", `{"volume":"default","options":1,"user":"u","uid":4294967295,"gid":0}`)
	f.Add("readdir_plus", `{"mount_id":MID,"inode":1,"prev_cookie":9223372036854775807,"max_entries":-1}`)
	f.Add("create", `{"mount_id":MID,"inode":1,"name":"x","mode":420,"as":{"uid":1000,"gid":1000,"groups":[1,2]}}`)
	f.Add("get_stat", `{"mount_id":MID,"inode":FID,"as":null}`)
	f.Add("read", `{"mount_id":MID,"inode":FID,"offset":0,"length":5,"as":{"uid":1,"gid":1,"groups":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33]}}`)
	f.Add("auth", `{"token":"nope"}`)
	f.Fuzz(func(t *testing.T, method, params string) {
		s, logs := fuzzServer(t)
		// A gateway's connection: per-call identities ("as") are taken.
		gw := &connAuth{}
		gw.p.Store(&principal{desc: "fuzz", gateway: true})
		ctx := withAuth(context.Background(), gw)
		hd := s.mounts.NewHolder()
		defer hd.Release()
		// As root: the calls get past the permission checks to what
		// they do.
		m, err := hd.Mount("default", 0, mount.Identity{User: "fuzz"})
		if err != nil {
			t.Fatal(err)
		}
		fs := s.volumes["default"].fs
		a, err := fs.Create(ctx, inode.Caller{}, 1, "f", 0o644)
		if err != nil {
			t.Fatal(err)
		}
		params = strings.ReplaceAll(params, "MID", fmt.Sprint(m.ID))
		params = strings.ReplaceAll(params, "FID", fmt.Sprint(a.Ino))
		raw := json.RawMessage(params)
		res, err := s.dispatch(ctx, hd, "fuzz", method, &raw)
		if err == nil {
			if _, merr := json.Marshal(res); merr != nil {
				t.Fatalf("%s: result does not encode: %v", method, merr)
			}
		} else if w := s.classify(method, err); w.errno == 0 {
			t.Fatalf("%s: error %v maps to errno 0", method, err)
		}
		failOnErrorLogs(t, logs, method+" "+params)
		probs, err := fs.Check(ctx)
		if err != nil || len(probs) > 0 {
			t.Fatalf("%s %s left the volume inconsistent: %v %v", method, params, probs, err)
		}
	})
}

// FuzzJSONStream feeds any bytes to a JSON-RPC connection: the server
// answers or closes, never panics, never hangs.
func FuzzJSONStream(f *testing.F) {
	frame := func(body string) []byte { return []byte(fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)) }
	f.Add(frame(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}`))
	f.Add(frame(`{"jsonrpc":"2.0","id":1,"method":"mount","params":{"volume":"default","uid":1,"gid":1}}`))
	f.Add(frame(`{"jsonrpc":"2.0","id":1,"method":`))
	f.Add(frame(`[{"jsonrpc":"2.0"}]`))
	f.Add(frame("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"a\":\"\\ud800\"}}"))
	f.Add([]byte("Content-Length: 99999999999\r\n\r\n"))
	f.Add([]byte("Content-Length: -1\r\n\r\n"))
	f.Add([]byte("Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, logs := fuzzServer(t)
		s.cfg.MaxMessageBytes = 1 << 16
		// After in, a last ping; an unfinished message ends with the stream.
		serveStream(t, s, append(bytes.Clone(in), frame(`{"jsonrpc":"2.0","id":"last","method":"ping","params":{}}`)...))
		failOnErrorLogs(t, logs, fmt.Sprintf("%q", in))
	})
}

// FuzzBinaryStream feeds any bytes to a binary channel (after the magic).
func FuzzBinaryStream(f *testing.F) {
	f.Add(wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpRead, ID: 1, MountID: 1, Inode: 1, Length: 10})[4:])
	f.Add(append(wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpWrite, ID: 2, MountID: 1, Inode: 1, Length: 3})[4:], "abc"...))
	f.Add(wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpWrite, ID: 3, Length: 1 << 31})[4:])
	// Per-call identities, a bad one (33 groups), and AUTH.
	f.Add(wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpGetStat, ID: 4, MountID: 1, Inode: 1,
		As: &wire.Identity{UID: 1000, GID: 1000, Groups: []uint32{100, 200}}})[4:])
	bad := wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpRead, ID: 5, MountID: 1, Inode: 1, Length: 4,
		As: &wire.Identity{UID: 1}})
	bad[wire.RequestHeaderSize+8] = 33
	f.Add(bad[4:])
	f.Add(append(wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpAuth, ID: 6, Length: 4})[4:], "nope"...))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, logs := fuzzServer(t)
		s.cfg.MaxIOBytes = 1 << 16
		serveStream(t, s, append([]byte(wire.RequestMagic), in...))
		failOnErrorLogs(t, logs, fmt.Sprintf("%q", in))
	})
}

// serveStream serves one loopback connection on which a client sends in
// and half-closes; it returns once the server has finished with it (the
// test's timeout catches a hang). The replies are read and discarded.
func serveStream(t *testing.T, s *Server, in []byte) {
	client, server := connPair(t)
	defer client.Close()
	if err := s.addConn(server); err != nil {
		t.Fatalf("connection refused: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serveConn(server)
	}()
	go func() {
		client.Write(in)
		client.CloseWrite() // end of the stream: the server must finish
	}()
	io.Copy(io.Discard, client)
	<-done
}

// connPair returns both ends of a loopback TCP connection (unlike
// net.Pipe, it can be half-closed).
func connPair(t *testing.T) (*net.TCPConn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn), s
}
