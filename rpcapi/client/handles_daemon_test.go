package client

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// startHandleDaemon starts a proxyfsd with a capped volume (so that
// statvfs shows space coming back) and the given reclaim_grace.
func startHandleDaemon(t *testing.T, reclaimGrace time.Duration) *daemontest.Daemon {
	t.Helper()
	return aliceDaemon(t, daemontest.Options{
		LogLevel:     "info",
		ReclaimGrace: reclaimGrace,
		Volumes:      []daemontest.Volume{{Name: "default", CapacityBytes: 64 << 20}},
	})
}

func readAll(t *testing.T, m *Mount, ino uint64, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	got, err := m.Read(context.Background(), ino, buf, 0)
	if err != nil {
		t.Fatalf("read %d: %v", ino, err)
	}
	return buf[:got]
}

// Two clients: A opens a file, B unlinks it; A goes on reading, writing,
// stat-ing and setting xattrs through the inode number; at A's close the
// file is gone and its space is back.
func TestDaemonOpenUnlinkedByOther(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	_, a := dialMount(t, d.TCPAddr, alice)
	_, b := dialMount(t, d.UnixPath, alice)

	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	st := must[Stat](t, "create")(a.CreatePath(ctx, "/f", 0o644))
	if n, err := a.Write(ctx, st.Ino, data, 0); err != nil || n != len(data) {
		t.Fatalf("write: %d %v", n, err)
	}
	before := must[StatVFS](t, "statvfs")(a.StatVFS(ctx))

	h, hst, err := a.Open(ctx, st.Ino, OpenReadWrite)
	noErr(t, "open", err)
	if hst.Ino != st.Ino || hst.Size != uint64(len(data)) || h.Fh() == 0 || h.Fh() >= 1<<53 {
		t.Fatalf("open: stat %+v fh %d", hst, h.Fh())
	}
	noErr(t, "B unlinks", b.UnlinkPath(ctx, "/f"))
	_, err = b.LookupPath(ctx, "/f")
	wantErrno(t, "lookup after unlink", err, syscall.ENOENT)

	if got := readAll(t, a, st.Ino, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("A reads %d bytes, want the file", len(got))
	}
	if _, err := a.Write(ctx, st.Ino, []byte("HELLO"), 0); err != nil {
		t.Fatalf("A writes the unlinked file: %v", err)
	}
	if got := readAll(t, b, st.Ino, 5); string(got) != "HELLO" {
		t.Fatalf("B reads %q through the inode", got)
	}
	sa := must[Stat](t, "stat")(a.GetStat(ctx, st.Ino))
	if sa.Nlink != 0 || sa.Size != uint64(len(data)) {
		t.Fatalf("stat of the unlinked file: %+v", sa)
	}
	noErr(t, "setxattr", a.SetXattr(ctx, st.Ino, "user.k", []byte("v"), 0))
	noErr(t, "flush", a.Flush(ctx, st.Ino))
	// A plain open of the unlinked file fails; so does a link to it.
	_, _, err = b.Open(ctx, st.Ino, OpenReadOnly)
	wantErrno(t, "B opens the unlinked file", err, syscall.ENOENT)

	mid := must[StatVFS](t, "statvfs")(a.StatVFS(ctx))
	if mid.Bfree != before.Bfree {
		t.Fatalf("space changed while the file is open: %d -> %d", before.Bfree, mid.Bfree)
	}
	noErr(t, "close", h.Close(ctx))
	_, err = a.GetStat(ctx, st.Ino)
	wantErrno(t, "stat after the last close", err, syscall.ENOENT)
	_, err = a.Read(ctx, st.Ino, make([]byte, 1), 0)
	wantErrno(t, "read after the last close", err, syscall.EBADF)
	after := must[StatVFS](t, "statvfs")(a.StatVFS(ctx))
	if want := before.Bfree + uint64(len(data))/before.Bsize; after.Bfree != want {
		t.Fatalf("free blocks %d after close, want %d", after.Bfree, want)
	}
	wantErrno(t, "close twice", h.Close(ctx), syscall.EBADF)
	d.Check(t)
}

// A rename over an open file keeps it for its holder; two handles keep it
// until both close; handles of another mount are EBADF.
func TestDaemonRenameOverOpen(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	ca, a := dialMount(t, d.TCPAddr, alice)
	_, b := dialMount(t, d.TCPAddr, alice)
	old := must[Stat](t, "create old")(a.CreatePath(ctx, "/target", 0o644))
	_, err := a.Write(ctx, old.Ino, []byte("old contents"), 0)
	noErr(t, "write", err)
	h1, _, err := a.Open(ctx, old.Ino, OpenReadOnly)
	noErr(t, "open 1", err)
	h2, _, err := b.Open(ctx, old.Ino, OpenReadOnly)
	noErr(t, "open 2", err)

	// The server's handle is valid with its own mount only.
	var e wire.Empty
	err = ca.jsonAttempt(ctx, wire.MethodClose, wire.CloseParams{MountID: b.MountID(), Fh: h1.Fh()}, &e)
	wantErrno(t, "close A's handle with B's mount", err, syscall.EBADF)

	nw := must[Stat](t, "create new")(b.CreatePath(ctx, "/new", 0o644))
	noErr(t, "rename over", b.RenamePath(ctx, "/new", "/target"))
	if ino := must[uint64](t, "lookup")(a.LookupPath(ctx, "/target")); ino != nw.Ino {
		t.Fatalf("/target is %d, want %d", ino, nw.Ino)
	}
	if got := readAll(t, a, old.Ino, 64); string(got) != "old contents" {
		t.Fatalf("renamed-over file reads %q", got)
	}
	noErr(t, "close 1", h1.Close(ctx))
	if got := readAll(t, b, old.Ino, 64); string(got) != "old contents" {
		t.Fatalf("after one close: %q", got)
	}
	noErr(t, "close 2", h2.Close(ctx))
	_, err = a.GetStat(ctx, old.Ino)
	wantErrno(t, "stat after both closed", err, syscall.ENOENT)

	// A file with links is not affected by its closes.
	h3, _, err := a.Open(ctx, nw.Ino, OpenWriteOnly)
	noErr(t, "open linked", err)
	noErr(t, "close linked", h3.Close(ctx))
	if s := must[Stat](t, "stat")(a.GetStat(ctx, nw.Ino)); s.Nlink != 1 {
		t.Fatalf("linked file after close: %+v", s)
	}
	// Unmount closes the mount's handles: the orphan goes.
	h4, _, err := b.Open(ctx, nw.Ino, OpenReadOnly)
	noErr(t, "open for unmount", err)
	_ = h4
	noErr(t, "unlink", a.UnlinkPath(ctx, "/target"))
	if s := must[Stat](t, "stat")(a.GetStat(ctx, nw.Ino)); s.Nlink != 0 {
		t.Fatalf("open file after unlink: %+v", s)
	}
	noErr(t, "unmount B", b.Unmount(ctx))
	_, err = a.GetStat(ctx, nw.Ino)
	wantErrno(t, "stat after the holder unmounted", err, syscall.ENOENT)
	d.Check(t)
}

// Across kill -9: the client opens a file, it is unlinked, the daemon
// crashes and restarts; the client reopens its handle during reclaim_grace
// (transparently) and keeps reading; an orphan whose client never comes
// back is freed when the grace ends; -check is clean with orphans present
// and after they are freed.
func TestDaemonOrphansAcrossCrash(t *testing.T) {
	d := startHandleDaemon(t, 3*time.Second)
	ctx := context.Background()
	_, a := dialMount(t, d.TCPAddr, alice, WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	cg, gone := dialMount(t, d.TCPAddr, alice)

	keep := must[Stat](t, "create keep")(a.CreatePath(ctx, "/keep", 0o644))
	_, err := a.Write(ctx, keep.Ino, []byte("kept data"), 0)
	noErr(t, "write keep", err)
	drop := must[Stat](t, "create drop")(a.CreatePath(ctx, "/drop", 0o644))
	_, err = a.Write(ctx, drop.Ino, []byte("dropped data"), 0)
	noErr(t, "write drop", err)

	h, _, err := a.Open(ctx, keep.Ino, OpenReadWrite)
	noErr(t, "open keep", err)
	fh0 := h.Fh()
	_, _, err = gone.Open(ctx, drop.Ino, OpenReadOnly)
	noErr(t, "open drop", err)
	noErr(t, "unlink keep", a.UnlinkPath(ctx, "/keep"))
	noErr(t, "unlink drop", a.UnlinkPath(ctx, "/drop"))

	d.Kill()
	cg.Close() // this client never comes back
	// -check with the orphans present, daemon down.
	if code, out := d.Run(t, time.Minute, "-check"); code != 0 {
		t.Fatalf("-check with orphans: exit %d\n%s", code, out)
	}
	d.Restart()
	start := time.Now()

	// The first call notices the restart, mounts again and reopens h.
	if got := readAll(t, a, keep.Ino, 64); string(got) != "kept data" {
		t.Fatalf("read after restart: %q", got)
	}
	if h.Fh() == fh0 || h.Fh() == 0 {
		t.Fatalf("handle not reopened: fh %d (was %d)", h.Fh(), fh0)
	}
	if time.Since(start) > 3*time.Second {
		t.Skip("the reopen took longer than reclaim_grace on this machine")
	}
	// Past the grace: the reopened file stays, the other one is freed.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := a.GetStat(ctx, drop.Ino)
		if errnoOf(err) == syscall.ENOENT {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan of the client that never came back still there: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := readAll(t, a, keep.Ino, 64); string(got) != "kept data" {
		t.Fatalf("read after the grace: %q", got)
	}
	_, err = a.Write(ctx, keep.Ino, []byte("KEPT"), 0)
	noErr(t, "write after the grace", err)
	// -check passes with the reopened orphan present (SIGTERM, check,
	// start again: the handle is reopened once more).
	d.Check(t)
	if got := readAll(t, a, keep.Ino, 64); string(got) != "KEPT data" {
		t.Fatalf("read after the check restart: %q", got)
	}
	noErr(t, "close", h.Close(ctx))
	_, err = a.GetStat(ctx, keep.Ino)
	wantErrno(t, "stat after close", err, syscall.ENOENT)
	d.Check(t)
}
