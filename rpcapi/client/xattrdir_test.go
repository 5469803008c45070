package client

import (
	"context"
	"fmt"
	"reflect"
	"syscall"
	"testing"
)

// TestDaemonReadDirPlusXattr: every entry's xattrs as ListXattr and
// GetXattr give them; paging; errors; a daemon killed with SIGKILL.
func TestDaemonReadDirPlusXattr(t *testing.T) {
	transports(t, func(t *testing.T, d *daemon, addr string) {
		ctx := context.Background()
		_, m := dialMount(t, addr, alice)
		dir := must[Stat](t, "mkdir")(m.Mkdir(ctx, 1, "x", 0o755))
		for i := range 50 {
			f := must[Stat](t, "create")(m.Create(ctx, dir.Ino, fmt.Sprintf("f%02d", i), 0o644))
			if i%2 == 0 {
				if err := m.SetXattr(ctx, f.Ino, "user.DOSATTRIB", []byte(fmt.Sprint(i)), 0); err != nil {
					t.Fatal(err)
				}
			}
			if i == 7 {
				if err := m.Chmod(ctx, f.Ino, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		names := []string{"user.DOSATTRIB"}
		list := func() []DirEntry {
			var all []DirEntry
			prev := int64(-1)
			for range 20 {
				ents, eof, err := m.ReadDirPlusXattr(ctx, dir.Ino, prev, 16, names)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, ents...)
				if eof {
					return all
				}
				prev = ents[len(ents)-1].Cookie
			}
			t.Fatal("no eof")
			return nil
		}
		check := func(ents []DirEntry) {
			t.Helper()
			if len(ents) != 52 {
				t.Fatalf("%d entries", len(ents))
			}
			for _, e := range ents {
				x := e.Xattr
				if x == nil || e.Stat == nil || e.Stat.Ino != e.Inode || len(x.Values) != 1 {
					t.Fatalf("entry %+v", e)
				}
				l, lerr := m.ListXattr(ctx, e.Inode)
				v, gerr := m.GetXattr(ctx, e.Inode, names[0])
				switch {
				case lerr != nil:
					if !isErrno(lerr, syscall.Errno(x.Errno)) || len(x.Names) != 0 {
						t.Fatalf("%s: list %v, entry %+v", e.Name, lerr, x)
					}
				case !reflect.DeepEqual(l, x.Names):
					t.Fatalf("%s: list %v, entry %v", e.Name, l, x.Names)
				}
				if gerr != nil {
					if !isErrno(gerr, syscall.Errno(x.Values[0].Errno)) {
						t.Fatalf("%s: get %v, entry %+v", e.Name, gerr, x.Values[0])
					}
				} else if x.Values[0].Errno != 0 || string(v) != string(x.Values[0].Value) {
					t.Fatalf("%s: get %q, entry %+v", e.Name, v, x.Values[0])
				}
			}
		}
		check(list())
		wantErrno(t, "17 names", func() error {
			_, _, err := m.ReadDirPlusXattr(ctx, dir.Ino, -1, 0, make([]string, 17))
			return err
		}(), syscall.EINVAL)
		wantErrno(t, "empty name", func() error { _, _, err := m.ReadDirPlusXattr(ctx, dir.Ino, -1, 0, []string{""}); return err }(), syscall.EINVAL)
		wantErrno(t, "missing dir", func() error { _, _, err := m.ReadDirPlusXattr(ctx, 987654, -1, 0, names); return err }(), syscall.ENOENT)
		d.kill(t)
		d.restart(t)
		check(list())
	})
}

func isErrno(err error, want syscall.Errno) bool {
	var e syscall.Errno
	if ce, ok := err.(*Error); ok {
		e = ce.Errno
	}
	return e == want && want != 0
}
