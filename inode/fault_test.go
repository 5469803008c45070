package inode_test

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/faulty"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// snapshot maps every path below the root to its content (files), its
// target (symlinks, prefixed "->") or "dir".
func snapshot(t *testing.T, fs *inode.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(dir inode.Ino, prefix string)
	walk = func(dir inode.Ino, prefix string) {
		for _, e := range listAll(t, fs, dir, 0)[2:] {
			p := prefix + "/" + e.Name
			a := attr(t, fs, e.Ino)
			switch {
			case a.IsDir():
				out[p] = "dir"
				walk(e.Ino, p)
			case a.Mode&inode.ModeType == inode.ModeSymlink:
				target, err := fs.ReadSymlink(ctx, e.Ino)
				wantErr(t, "readlink", err, 0)
				out[p] = "->" + target
			default:
				buf := make([]byte, a.Size+1)
				n, err := fs.Read(ctx, root, e.Ino, buf, 0)
				wantErr(t, "read", err, 0)
				out[p] = string(buf[:n])
			}
		}
	}
	walk(inode.RootIno, "")
	return out
}

// workload runs one of each mutating call; every call must succeed or
// fail with errno. It returns how many failed.
//
// A call that depends on an earlier one that failed may fail with ENOENT
// (rename of a file that was never created); the cleanup of round-2's
// files tolerates ENOENT and ENOTEMPTY when prevFaulted says that round
// ran with faults.
func workload(t *testing.T, fs *inode.FS, round int, errno syscall.Errno, prevFaulted bool) int {
	t.Helper()
	failed := 0
	check := func(what string, err error) {
		if err == nil {
			return
		}
		if failed > 0 && errors.Is(err, syscall.ENOENT) {
			return
		}
		if !errors.Is(err, errno) {
			t.Fatalf("round %d: %s: %v, want success or %v", round, what, err, errno)
		}
		failed++
	}
	n := fmt.Sprintf("r%d", round)
	_, err := fs.Mkdir(ctx, root, inode.RootIno, n, 0o755)
	check("mkdir", err)
	a, err := fs.Create(ctx, root, inode.RootIno, n+"f", 0o644)
	check("create", err)
	if err == nil {
		check("write", fs.Write(ctx, root, a.Ino, bytes.Repeat([]byte{byte(round)}, 5000), 100))
		_, err = fs.SetAttr(ctx, root, a.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 1000})
		check("shrink", err)
		check("flush", fs.Flush(ctx, a.Ino))
		check("link", fs.Link(ctx, root, inode.RootIno, n+"l", a.Ino))
		check("setxattr", fs.SetXattr(ctx, root, a.Ino, "user.x", []byte(n), 0))
	}
	_, err = fs.Symlink(ctx, root, inode.RootIno, n+"s", "target")
	check("symlink", err)
	check("rename", fs.Rename(ctx, root, inode.RootIno, n+"f", inode.RootIno, n+"g"))
	check("unlink", fs.Unlink(ctx, root, inode.RootIno, n+"l"))
	if round > 1 {
		p := fmt.Sprintf("r%d", round-2)
		for _, err := range []error{fs.Unlink(ctx, root, inode.RootIno, p+"g"), fs.Unlink(ctx, root, inode.RootIno, p+"s"), fs.Rmdir(ctx, root, inode.RootIno, p)} {
			if prevFaulted && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTEMPTY)) {
				continue
			}
			check("clean up round-2", err)
		}
	}
	tmp, err := fs.Create(ctx, root, inode.RootIno, n+"tmp", 0o644)
	check("create tmp", err)
	if err == nil {
		check("write tmp", fs.Write(ctx, root, tmp.Ino, []byte("x"), 0))
		check("unlink tmp", fs.Unlink(ctx, root, inode.RootIno, n+"tmp"))
	}
	_, _, err = fs.ReadDir(ctx, root, inode.RootIno, -1, 0, true)
	check("readdir", err)
	_, err = fs.GetAttr(ctx, inode.RootIno)
	check("getattr", err)
	if a.Ino != 0 {
		_, err = fs.Read(ctx, root, a.Ino, make([]byte, 100), 0)
		check("read", err)
	}
	check("sync", fs.Sync(ctx))
	return failed
}

// Injected ENOSPC and EIO at every engine operation reach the caller as
// that errno; nothing acknowledged before is damaged; the volume stays
// consistent; service resumes when the fault is gone.
func TestInjectedFaults(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		for _, op := range faulty.Ops {
			t.Run(fmt.Sprintf("%s/%s", op, errno), func(t *testing.T) {
				be := faulty.Wrap(mem.New(vfsbackend.Options{}))
				fs, err := inode.Open(ctx, be, inode.Options{Now: inodetest.NewClock().Now})
				if err != nil {
					t.Fatal(err)
				}
				if n := workload(t, fs, 0, 0, false); n != 0 {
					t.Fatalf("workload without faults failed %d calls", n)
				}
				before := snapshot(t, fs)
				be.Set(op, errno, -1)
				workload(t, fs, 1, errno, false)
				be.Clear()
				if be.Injected(op) == 0 {
					t.Fatalf("no %s fault was injected", op)
				}
				// Whatever round 1 did or did not do, round 0's state that
				// round 1 does not touch is intact.
				after := snapshot(t, fs)
				for p, v := range before {
					if after[p] != v {
						t.Fatalf("%s changed: %d bytes -> %d bytes", p, len(v), len(after[p]))
					}
				}
				if err := fs.Sync(ctx); err != nil {
					t.Fatalf("sync after fault: %v", err)
				}
				inodetest.MustCheck(t, fs)
				// Service resumes.
				if n := workload(t, fs, 2, 0, false); n != 0 {
					t.Fatalf("workload after fault failed %d calls", n)
				}
				if n := workload(t, fs, 3, 0, true); n != 0 {
					t.Fatalf("workload after fault failed %d calls", n)
				}
				inodetest.MustCheck(t, fs)
				// And a restart finds the same consistent volume.
				fs2, err := inode.Open(ctx, be, inode.Options{})
				if err != nil {
					t.Fatal(err)
				}
				inodetest.MustCheck(t, fs2)
			})
		}
	}
}
