package client

import (
	"context"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

func TestDaemonLookupStat(t *testing.T) {
	d := startDaemon(t)
	_, m := dialMount(t, d.tcp(), alice)
	ctx := context.Background()
	root := m.RootInode()
	f := must[Stat](t, "Create")(m.Create(ctx, root, "f", 0o640))
	l := must[Stat](t, "Symlink")(m.Symlink(ctx, root, "l", "f"))
	st := must[Stat](t, "LookupStat")(m.LookupStat(ctx, root, "f"))
	if g := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino)); st != g || st.Ino != f.Ino {
		t.Errorf("LookupStat = %+v, GetStat = %+v", st, g)
	}
	if st := must[Stat](t, "LookupStat symlink")(m.LookupStat(ctx, root, "l")); st.Ino != l.Ino || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("LookupStat of a symlink = %+v", st)
	}
	wantErrno(t, "LookupStat missing", errOf(m.LookupStat(ctx, root, "nope")), syscall.ENOENT)
	wantErrno(t, "LookupStat in a file", errOf(m.LookupStat(ctx, f.Ino, "x")), syscall.ENOTDIR)
}

func TestDaemonRealpathFollow(t *testing.T) {
	d := startDaemon(t)
	_, m := dialMount(t, d.tcp(), alice)
	ctx := context.Background()
	root := m.RootInode()
	dir := must[Stat](t, "Mkdir")(m.Mkdir(ctx, root, "d", 0o755))
	f := must[Stat](t, "Create")(m.Create(ctx, dir.Ino, "f", 0o640))
	must[Stat](t, "Symlink")(m.Symlink(ctx, root, "l", "/d/f"))
	must[Stat](t, "Symlink")(m.Symlink(ctx, root, "dl", "nope"))
	p, ino, err := m.Realpath(ctx, "//l")
	if err != nil || p != "/d/f" || ino != f.Ino {
		t.Errorf("Realpath = %q %d %v", p, ino, err)
	}
	wantErrno(t, "Realpath dangling", errOf3(m.Realpath(ctx, "dl")), syscall.ENOENT)
	if st := must[Stat](t, "GetStatPathFollow")(m.GetStatPathFollow(ctx, "l")); st.Ino != f.Ino || st.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("GetStatPathFollow %+v", st)
	}
	if st := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "l")); st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("GetStatPath of a symlink followed it: %+v", st)
	}
	wantErrno(t, "GetStatPathFollow dangling", errOf(m.GetStatPathFollow(ctx, "dl")), syscall.ENOENT)
}

// Times before 1970 (negative seconds) go through setattr and settime and
// come back from every stat (JSON and binary).
func TestDaemonTimesBefore1970(t *testing.T) {
	d := startDaemon(t)
	_, m := dialMount(t, d.tcp(), alice)
	ctx := context.Background()
	f := must[Stat](t, "Create")(m.Create(ctx, m.RootInode(), "old", 0o644))
	mt := Timespec{Sec: -1, Nsec: 500000000}
	ct := Timespec{Sec: -2147483648}
	st := must[Stat](t, "SetAttr")(m.SetAttr(ctx, f.Ino, Attrs{Mask: wire.SetMtime | wire.SetCrtime, Mtime: &mt, Crtime: &ct}))
	if st.Mtime != mt || st.Crtime != ct {
		t.Errorf("SetAttr stat %+v", st)
	}
	at := Timespec{Sec: -86400, Nsec: 1}
	if err := m.SetTime(ctx, f.Ino, &at, nil); err != nil {
		t.Fatal(err)
	}
	b := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino))
	j := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "old"))
	if b != j || b.Atime != at || b.Mtime != mt || b.Crtime != ct {
		t.Errorf("binary %+v, JSON %+v", b, j)
	}
}
