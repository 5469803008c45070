package client

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// bob is a second user, for the tests of I/O through handles.
var bob = Identity{UID: 1001, GID: 1001}

// Open-time permissions (PROTOCOL.md, "I/O through a handle"): the
// POSIX cases that per-call checks break, over the real daemon. The
// client is a gateway (the tests run as root), alice and bob are per-call
// identities of one mount, as the FUSE mount uses them.
func TestDaemonHandleOpenTimePermissions(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	_, root := dialMount(t, d.UnixPath, MountOptions{User: "root"})
	a := root.As(Identity{UID: alice.UID, GID: alice.GID})
	b := root.As(bob)

	t.Run("create 0444 then write", func(t *testing.T) {
		// open("/ro", O_CREAT|O_WRONLY, 0444), then write: allowed.
		h, st, err := a.CreateOpen(ctx, 1, "ro", 0o444, OpenWriteOnly)
		noErr(t, "create_open", err)
		defer h.Close(ctx)
		if st.Mode&0o777 != 0o444 || st.UID != alice.UID || st.Ino != h.Ino() {
			t.Fatalf("create_open stat: %+v", st)
		}
		if n, err := h.Write(ctx, []byte("hello"), 0); err != nil || n != 5 {
			t.Fatalf("write through the handle: %d %v", n, err)
		}
		_, err = h.Read(ctx, make([]byte, 5), 0)
		wantErrno(t, "read through a write-only handle", err, syscall.EBADF)
		_, err = a.Write(ctx, st.Ino, []byte("x"), 0)
		wantErrno(t, "write by inode, no handle", err, syscall.EACCES)
		_, _, err = a.Open(ctx, st.Ino, OpenWriteOnly)
		wantErrno(t, "a new open for writing", err, syscall.EACCES)
		got := make([]byte, 5)
		if n, err := a.Read(ctx, st.Ino, got, 0); err != nil || string(got[:n]) != "hello" {
			t.Fatalf("read by inode: %q %v", got[:n], err)
		}
		_, _, err = a.CreateOpen(ctx, 1, "ro", 0o644, OpenReadWrite)
		wantErrno(t, "create_open of an existing name", err, syscall.EEXIST)
		_, _, err = a.CreateOpen(ctx, 1, "bad", 0o644, 3)
		wantErrno(t, "create_open with access mode 3", err, syscall.EINVAL)
		_, _, err = a.CreateOpen(ctx, 1, "bad", 0o1000000, OpenReadWrite)
		wantErrno(t, "create_open with a bad mode", err, syscall.EINVAL)
		_, err = a.LookupStat(ctx, 1, "bad")
		wantErrno(t, "no file after a refused create_open", err, syscall.ENOENT)
	})

	t.Run("chmod 000 while open", func(t *testing.T) {
		st := must[Stat](t, "create")(a.Create(ctx, 1, "f", 0o644))
		h, _, err := a.Open(ctx, st.Ino, OpenReadWrite)
		noErr(t, "open", err)
		defer h.Close(ctx)
		noErr(t, "chmod 000", a.Chmod(ctx, st.Ino, 0))
		if _, err := h.Write(ctx, []byte("data"), 0); err != nil {
			t.Fatalf("write through the handle after chmod 000: %v", err)
		}
		buf := make([]byte, 4)
		if n, err := h.Read(ctx, buf, 0); err != nil || string(buf[:n]) != "data" {
			t.Fatalf("read through the handle after chmod 000: %q %v", buf[:n], err)
		}
		if st, err := h.Truncate(ctx, 2); err != nil || st.Size != 2 {
			t.Fatalf("ftruncate after chmod 000: %+v %v", st, err)
		}
		noErr(t, "fsync through the handle", h.Flush(ctx))
		_, err = a.Read(ctx, st.Ino, buf, 0)
		wantErrno(t, "read by inode after chmod 000", err, syscall.EACCES)
		_, err = a.Write(ctx, st.Ino, buf, 0)
		wantErrno(t, "write by inode after chmod 000", err, syscall.EACCES)
		err = a.Resize(ctx, st.Ino, 0)
		wantErrno(t, "truncate by inode after chmod 000", err, syscall.EACCES)
		_, _, err = a.Open(ctx, st.Ino, OpenReadOnly)
		wantErrno(t, "a new open after chmod 000", err, syscall.EACCES)
	})

	t.Run("opened before a chown", func(t *testing.T) {
		st := must[Stat](t, "create")(a.Create(ctx, 1, "g", 0o600))
		h, _, err := a.Open(ctx, st.Ino, OpenReadWrite)
		noErr(t, "open", err)
		defer h.Close(ctx)
		noErr(t, "chown to bob", root.Chown(ctx, st.Ino, int64(bob.UID), int64(bob.GID)))
		if _, err := h.Write(ctx, []byte("still mine"), 0); err != nil {
			t.Fatalf("write through the handle after the chown: %v", err)
		}
		_, err = a.Read(ctx, st.Ino, make([]byte, 4), 0)
		wantErrno(t, "alice reads bob's 0600 file by inode", err, syscall.EACCES)
		_, _, err = a.Open(ctx, st.Ino, OpenReadOnly)
		wantErrno(t, "alice opens bob's 0600 file", err, syscall.EACCES)
		buf := make([]byte, 10)
		if n, err := b.Read(ctx, st.Ino, buf, 0); err != nil || string(buf[:n]) != "still mine" {
			t.Fatalf("bob reads his file: %q %v", buf[:n], err)
		}
	})

	t.Run("access mode of the handle", func(t *testing.T) {
		st := must[Stat](t, "create")(a.Create(ctx, 1, "m", 0o666))
		ro, _, err := a.Open(ctx, st.Ino, OpenReadOnly)
		noErr(t, "open read-only", err)
		defer ro.Close(ctx)
		_, err = ro.Write(ctx, []byte("x"), 0)
		wantErrno(t, "write through a read-only handle", err, syscall.EBADF)
		_, err = ro.Truncate(ctx, 0)
		wantErrno(t, "ftruncate through a read-only handle", err, syscall.EBADF)
		noErr(t, "fsync through a read-only handle", ro.Flush(ctx))
		if n, err := ro.Read(ctx, make([]byte, 1), 0); err != nil || n != 0 {
			t.Fatalf("read of an empty file: %d %v", n, err)
		}
	})

	t.Run("a handle belongs to its mount and inode", func(t *testing.T) {
		st := must[Stat](t, "create")(a.Create(ctx, 1, "h", 0o644))
		other := must[Stat](t, "create")(a.Create(ctx, 1, "h2", 0o644))
		h, _, err := a.Open(ctx, st.Ino, OpenReadWrite)
		noErr(t, "open", err)
		defer h.Close(ctx)
		_, m2 := dialMount(t, d.TCPAddr, alice)
		id2 := m2.st.Load().MountID
		var rr wire.ReadResult
		err = m2.jsonAttempt(ctx, wire.MethodRead, wire.ReadParams{MountID: id2, Inode: st.Ino, Length: 1, Fh: h.Fh()}, &rr)
		wantErrno(t, "JSON read with another mount's handle", err, syscall.EBADF)
		_, err = m2.c.binAttempt(ctx, wire.MethodWrite, wire.RequestHeader{Opcode: wire.OpWrite, MountID: id2, Inode: st.Ino,
			Length: 1, Fh: h.Fh()}, []byte("x"), nil)
		wantErrno(t, "binary write with another mount's handle", err, syscall.EBADF)
		id := root.st.Load().MountID
		err = a.jsonAttempt(ctx, wire.MethodWrite, wire.WriteParams{MountID: id, Inode: other.Ino, Data: []byte("x"), Fh: h.Fh()}, nil)
		wantErrno(t, "JSON write with the handle of another inode", err, syscall.EBADF)
		err = a.jsonAttempt(ctx, wire.MethodFlush, wire.FlushParams{MountID: id, Inode: st.Ino, Fh: 12345}, nil)
		wantErrno(t, "flush with no such handle", err, syscall.EBADF)
		var sr wire.StatResult
		err = a.jsonAttempt(ctx, wire.MethodSetattr, wire.SetattrParams{MountID: id, Inode: st.Ino,
			SetattrFields: Attrs{Mask: wire.SetMode, Mode: 0o600}.Fields(), Fh: h.Fh()}, &sr)
		wantErrno(t, "setattr of the mode through a handle", err, syscall.EINVAL)
		_, err = a.c.binAttempt(ctx, wire.MethodGetStat, wire.RequestHeader{Opcode: wire.OpGetStat, MountID: id, Inode: st.Ino,
			Fh: h.Fh()}, nil, make([]byte, wire.StatSize))
		wantErrno(t, "GET_STAT with a handle", err, syscall.EINVAL)
		// The JSON forms work with the right handle.
		noErr(t, "JSON write through the handle", a.jsonAttempt(ctx, wire.MethodWrite,
			wire.WriteParams{MountID: id, Inode: st.Ino, Data: []byte("json"), Fh: h.Fh()}, nil))
		noErr(t, "chmod 0", a.Chmod(ctx, st.Ino, 0))
		noErr(t, "JSON read through the handle", a.jsonAttempt(ctx, wire.MethodRead,
			wire.ReadParams{MountID: id, Inode: st.Ino, Length: 4, Fh: h.Fh()}, &rr))
		if string(rr.Data) != "json" {
			t.Fatalf("JSON read through the handle: %q", rr.Data)
		}
		noErr(t, "JSON resize through the handle", a.jsonAttempt(ctx, wire.MethodResize,
			wire.ResizeParams{MountID: id, Inode: st.Ino, Size: 1, Fh: h.Fh()}, nil))
		var cr wire.NewInodeResult
		noErr(t, "JSON create with open", a.jsonAttempt(ctx, wire.MethodCreate,
			wire.CreateParams{MountID: id, Inode: 1, Name: "j", Mode: 0o400, Open: new(uint32(OpenReadWrite))}, &cr))
		if cr.Fh == 0 || cr.Stat.Mode&0o777 != 0o400 {
			t.Fatalf("JSON create with open: %+v", cr)
		}
		noErr(t, "JSON write through the created handle", a.jsonAttempt(ctx, wire.MethodWrite,
			wire.WriteParams{MountID: id, Inode: cr.Inode, Data: []byte("j"), Fh: cr.Fh}, nil))
		noErr(t, "close", a.jsonAttempt(ctx, wire.MethodClose, wire.CloseParams{MountID: id, Fh: cr.Fh}, nil))
	})
}

// Writes through a handle survive kill -9 of the daemon, and the handle
// goes on after the restart (reopened with reclaim).
func TestDaemonHandleIOSurvivesKill(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	_, root := dialMount(t, d.UnixPath, MountOptions{User: "root"})
	a := root.As(Identity{UID: alice.UID, GID: alice.GID})
	data := bytes.Repeat([]byte("abcdefgh"), 64<<10) // 512 KiB
	h, st, err := a.CreateOpen(ctx, 1, "k", 0o644, OpenReadWrite)
	noErr(t, "create_open", err)
	if n, err := h.Write(ctx, data, 0); err != nil || n != len(data) {
		t.Fatalf("write: %d %v", n, err)
	}
	d.Kill()
	d.Restart()
	got := make([]byte, len(data)+1)
	n, err := h.Read(ctx, got, 0)
	if err != nil || !bytes.Equal(got[:n], data) {
		t.Fatalf("read through the handle after kill -9: %d bytes, %v", n, err)
	}
	if _, err := h.Write(ctx, []byte("Z"), 0); err != nil {
		t.Fatalf("write through the handle after kill -9: %v", err)
	}
	noErr(t, "close", h.Close(ctx))
	buf := make([]byte, 1)
	if _, err := a.Read(ctx, st.Ino, buf, 0); err != nil || buf[0] != 'Z' {
		t.Fatalf("read by inode: %q %v", buf, err)
	}
}
