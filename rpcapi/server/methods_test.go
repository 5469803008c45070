package server_test

import (
	"bytes"
	"github.com/proxyfs/proxyfs/internal/version"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

type obj = map[string]any

// TestMethods runs every method of PROTOCOL.md, inode and path forms,
// through its success path and main errors.
func TestMethods(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		var ping wire.PingResult
		rc.ok(wire.MethodPing, obj{}, &ping)
		if ping.Version != 1 || ping.Server != "proxyfsd "+version.Version {
			t.Errorf("ping %+v", ping)
		}
		m := rc.mount("default", 0)
		id := m.MountID
		p := func(kv ...any) obj {
			o := obj{"mount_id": id}
			for i := 0; i < len(kv); i += 2 {
				o[kv[i].(string)] = kv[i+1]
			}
			return o
		}

		// Namespace: inode forms.
		var dir, file, link wire.NewInodeResult
		rc.ok(wire.MethodMkdir, p("inode", 1, "name", "d", "mode", 0o750), &dir)
		if dir.Stat.Mode != 0o40750 || dir.Stat.Nlink != 2 || dir.Stat.UID != 0 {
			t.Errorf("mkdir stat %+v", dir.Stat)
		}
		rc.ok(wire.MethodCreate, p("inode", dir.Inode, "name", "f", "mode", 0o640), &file)
		if file.Stat.Mode != 0o100640 {
			t.Errorf("create stat %+v", file.Stat)
		}
		rc.fails(wire.MethodCreate, p("inode", dir.Inode, "name", "f", "mode", 0o640), "EEXIST", 0)
		// File type bits in a mode are accepted and ignored, on both
		// channels (checkMode): C callers pass S_IFREG|mode.
		var typed wire.NewInodeResult
		rc.ok(wire.MethodCreate, p("inode", dir.Inode, "name", "typed", "mode", 0o100600), &typed)
		if typed.Stat.Mode != 0o100600 {
			t.Errorf("create with S_IFREG: %+v", typed.Stat)
		}
		rc.fails(wire.MethodCreate, p("inode", file.Inode, "name", "x", "mode", 0o640), "ENOTDIR", 0)
		rc.fails(wire.MethodCreate, p("inode", 1, "name", "..", "mode", 0o640), "EINVAL", 0)
		rc.fails(wire.MethodMkdir, p("inode", 1, "name", string(bytes.Repeat([]byte("n"), 256)), "mode", 0o755), "ENAMETOOLONG", 0)
		rc.ok(wire.MethodSymlink, p("inode", 1, "name", "l", "target", "d/f"), &link)
		if link.Stat.Mode != 0o120777 || link.Stat.Size != 3 {
			t.Errorf("symlink stat %+v", link.Stat)
		}
		var ir wire.InodeResult
		rc.ok(wire.MethodLookup, p("inode", dir.Inode, "name", "f"), &ir)
		if ir.Inode != file.Inode {
			t.Errorf("lookup = %d, want %d", ir.Inode, file.Inode)
		}
		rc.fails(wire.MethodLookup, p("inode", 1, "name", "nope"), "ENOENT", 0)
		rc.fails(wire.MethodLookup, p("inode", 999999, "name", "x"), "ENOENT", 0)
		var sr wire.StatResult
		rc.ok(wire.MethodGetStat, p("inode", file.Inode), &sr)
		if sr.Stat != file.Stat {
			t.Errorf("get_stat %+v, want %+v", sr.Stat, file.Stat)
		}
		rc.fails(wire.MethodGetStat, p("inode", 999999), "ENOENT", 0)
		var tr wire.TypeResult
		for ino, want := range map[uint64]uint16{1: 4, dir.Inode: 4, file.Inode: 8, link.Inode: 10} {
			rc.ok(wire.MethodType, p("inode", ino), &tr)
			if tr.Type != want {
				t.Errorf("type(%d) = %d, want %d", ino, tr.Type, want)
			}
		}
		var rs wire.ReadSymlinkResult
		rc.ok(wire.MethodReadSymlink, p("inode", link.Inode), &rs)
		if rs.Target != "d/f" {
			t.Errorf("read_symlink %q", rs.Target)
		}
		rc.fails(wire.MethodReadSymlink, p("inode", file.Inode), "EINVAL", 0)
		rc.ok(wire.MethodLink, p("inode", 1, "name", "hard", "target_inode", file.Inode), nil)
		rc.ok(wire.MethodGetStat, p("inode", file.Inode), &sr)
		if sr.Stat.Nlink != 2 {
			t.Errorf("nlink after link = %d", sr.Stat.Nlink)
		}
		rc.fails(wire.MethodLink, p("inode", 1, "name", "dlink", "target_inode", dir.Inode), "EPERM", 0)
		rc.fails(wire.MethodUnlink, p("inode", 1, "name", "d"), "EISDIR", 0)
		rc.fails(wire.MethodRmdir, p("inode", 1, "name", "hard"), "ENOTDIR", 0)
		rc.fails(wire.MethodRmdir, p("inode", 1, "name", "d"), "ENOTEMPTY", 0)
		rc.ok(wire.MethodUnlink, p("inode", 1, "name", "hard"), nil)
		rc.ok(wire.MethodRename, p("src_inode", dir.Inode, "src_name", "f", "dst_inode", 1, "dst_name", "g"), nil)
		rc.fails(wire.MethodRename, p("src_inode", 1, "src_name", "d", "dst_inode", dir.Inode, "dst_name", "sub"), "EINVAL", 0)
		rc.fails(wire.MethodRename, p("src_inode", 1, "src_name", "nope", "dst_inode", 1, "dst_name", "x"), "ENOENT", 0)

		// Namespace: path forms.
		var pd, pf, pl wire.NewInodeResult
		rc.ok(wire.MethodMkdirPath, p("path", "/pd", "mode", 0o755), &pd)
		rc.ok(wire.MethodCreatePath, p("path", "pd//./pf", "mode", 0o600), &pf)
		rc.ok(wire.MethodSymlinkPath, p("path", "/pl", "target", "/pd"), &pl)
		rc.fails(wire.MethodCreatePath, p("path", "/pd/pf", "mode", 0o600), "EEXIST", 0)
		rc.fails(wire.MethodCreatePath, p("path", "/nodir/x", "mode", 0o600), "ENOENT", 0)
		rc.ok(wire.MethodLookupPath, p("path", "/pl/pf"), &ir) // intermediate symlink followed
		if ir.Inode != pf.Inode {
			t.Errorf("lookup_path through symlink = %d, want %d", ir.Inode, pf.Inode)
		}
		rc.ok(wire.MethodLookupPath, p("path", "/pl"), &ir) // last component not followed
		if ir.Inode != pl.Inode {
			t.Errorf("lookup_path of symlink = %d, want %d", ir.Inode, pl.Inode)
		}
		rc.ok(wire.MethodLookupPath, p("path", "/../.."), &ir)
		if ir.Inode != 1 {
			t.Errorf("lookup_path /../.. = %d", ir.Inode)
		}
		rc.ok(wire.MethodGetStatPath, p("path", "pd/pf"), &sr)
		if sr.Stat.Ino != pf.Inode || sr.Stat.Mode != 0o100600 {
			t.Errorf("get_stat_path %+v", sr.Stat)
		}
		rc.ok(wire.MethodReadSymlinkPath, p("path", "/pl"), &rs)
		if rs.Target != "/pd" {
			t.Errorf("read_symlink_path %q", rs.Target)
		}
		rc.ok(wire.MethodLinkPath, p("src_path", "/pd/pf", "dst_path", "/pf2"), nil)
		rc.fails(wire.MethodLinkPath, p("src_path", "/pd", "dst_path", "/pd2"), "EPERM", 0)
		rc.ok(wire.MethodRenamePath, p("src_path", "/pf2", "dst_path", "/pd/pf3"), nil)
		rc.ok(wire.MethodUnlinkPath, p("path", "/pd/pf3"), nil)
		rc.fails(wire.MethodUnlinkPath, p("path", "/pd/pf3"), "ENOENT", 0)
		rc.fails(wire.MethodRmdirPath, p("path", "/pd"), "ENOTEMPTY", 0)
		rc.ok(wire.MethodMkdirPath, p("path", "/empty", "mode", 0o755), nil)
		rc.ok(wire.MethodRmdirPath, p("path", "/empty"), nil)
		rc.fails(wire.MethodLookupPath, p("path", "/empty"), "ENOENT", 0)

		// Attributes.
		g := file.Inode
		rc.ok(wire.MethodChmod, p("inode", g, "mode", 0o4711), nil)
		rc.ok(wire.MethodChown, p("inode", g, "uid", 7, "gid", -1), nil)
		rc.ok(wire.MethodGetStat, p("inode", g), &sr)
		// A change of owner clears setuid, even by root (as Linux).
		if sr.Stat.Mode != 0o100711 || sr.Stat.UID != 7 || sr.Stat.GID != 0 {
			t.Errorf("after chmod/chown: %+v", sr.Stat)
		}
		rc.fails(wire.MethodChown, p("inode", g, "uid", -2, "gid", -1), "EINVAL", 0)
		rc.ok(wire.MethodChmodPath, p("path", "/g", "mode", 0o644), nil)
		rc.ok(wire.MethodChownPath, p("path", "/g", "uid", -1, "gid", 9), nil)
		rc.ok(wire.MethodResize, p("inode", g, "size", 100), nil)
		rc.ok(wire.MethodResizePath, p("path", "/g", "size", 50), nil)
		rc.fails(wire.MethodResize, p("inode", 1, "size", 0), "EISDIR", 0)
		rc.ok(wire.MethodSettime, p("inode", g, "atime", obj{"sec": 1000, "nsec": 5}, "mtime", nil), nil)
		rc.ok(wire.MethodSettimePath, p("path", "/g", "mtime", obj{"sec": 2000, "nsec": 6}), nil)
		rc.fails(wire.MethodSettime, p("inode", g, "atime", obj{"sec": 1, "nsec": 1e9}), "EINVAL", 0)
		rc.ok(wire.MethodGetStatPath, p("path", "/g"), &sr)
		if sr.Stat.Mode != 0o100644 || sr.Stat.UID != 7 || sr.Stat.GID != 9 || sr.Stat.Size != 50 ||
			sr.Stat.Atime != (wire.Timespec{Sec: 1000, Nsec: 5}) || sr.Stat.Mtime != (wire.Timespec{Sec: 2000, Nsec: 6}) {
			t.Errorf("after attribute calls: %+v", sr.Stat)
		}
		rc.ok(wire.MethodSetattr, p("inode", g, "mask", wire.SetSize|wire.SetMode|wire.SetCrtime,
			"size", 0, "mode", 0o600, "crtime", obj{"sec": 42, "nsec": 0}), &sr)
		if sr.Stat.Size != 0 || sr.Stat.Mode != 0o100600 || sr.Stat.Crtime.Sec != 42 {
			t.Errorf("setattr result %+v", sr.Stat)
		}
		rc.ok(wire.MethodSetattrPath, p("path", "/g", "mask", wire.SetUID|wire.SetGID|wire.SetMtime,
			"uid", 1, "gid", 2, "mtime", obj{"sec": 3, "nsec": 4}), &sr)
		if sr.Stat.UID != 1 || sr.Stat.GID != 2 || sr.Stat.Mtime != (wire.Timespec{Sec: 3, Nsec: 4}) {
			t.Errorf("setattr_path result %+v", sr.Stat)
		}
		rc.ok(wire.MethodSetattr, p("inode", g, "mask", wire.SetAtimeNow|wire.SetMtimeNow), &sr)
		if sr.Stat.Atime.Sec < time.Now().Unix()-60 || sr.Stat.Mtime != sr.Stat.Atime || sr.Stat.Ctime != sr.Stat.Mtime {
			t.Errorf("setattr to now: %+v", sr.Stat)
		}
		rc.fails(wire.MethodSetattr, p("inode", g, "mask", wire.SetMtime|wire.SetMtimeNow, "mtime", obj{"sec": 1, "nsec": 0}), "EINVAL", 0)
		rc.fails(wire.MethodSetattr, p("inode", g, "mask", 512), "EINVAL", 0)
		rc.fails(wire.MethodSetattr, p("inode", g, "mask", wire.SetAtime), "EINVAL", -32602) // atime missing

		// Data.
		var wr wire.WriteResult
		rc.ok(wire.MethodWrite, p("inode", g, "offset", 10, "data", []byte("abc")), &wr)
		if wr.Size != 3 {
			t.Errorf("write size %d", wr.Size)
		}
		var rr wire.ReadResult
		rc.ok(wire.MethodRead, p("inode", g, "offset", 0, "length", 100), &rr)
		if !bytes.Equal(rr.Data, append(make([]byte, 10), "abc"...)) {
			t.Errorf("read %q", rr.Data)
		}
		rc.ok(wire.MethodRead, p("inode", g, "offset", 1000, "length", 10), &rr)
		if len(rr.Data) != 0 {
			t.Errorf("read past EOF: %q", rr.Data)
		}
		rc.fails(wire.MethodRead, p("inode", g, "offset", 0, "length", 8<<20+1), "EINVAL", 0)
		rc.fails(wire.MethodRead, p("inode", 1, "offset", 0, "length", 1), "EISDIR", 0)
		rc.fails(wire.MethodWrite, p("inode", 1, "offset", 0, "data", "eA=="), "EISDIR", 0)
		rc.fails(wire.MethodRead, p("inode", 999999, "offset", 0, "length", 1), "ENOENT", 0)
		rc.ok(wire.MethodWrite, p("inode", g, "offset", 0, "data", nil), &wr) // empty write
		rc.ok(wire.MethodFlush, p("inode", g), nil)
		rc.ok(wire.MethodFlush, p("inode", 1), nil)
		rc.fails(wire.MethodFlush, p("inode", 999999), "ENOENT", 0)

		// Directories.
		var rd wire.ReaddirResult
		rc.ok(wire.MethodReaddir, p("inode", 1, "prev_cookie", -1), &rd)
		names := []string{}
		for _, e := range rd.Entries {
			names = append(names, e.Name)
			if e.Stat != nil {
				t.Errorf("readdir entry %q has a stat", e.Name)
			}
		}
		if !rd.EOF || len(names) < 2 || names[0] != "." || names[1] != ".." || rd.Entries[0].Cookie != 1 || rd.Entries[1].Cookie != 2 {
			t.Errorf("readdir %+v", rd)
		}
		var all []string
		cookie := int64(-1)
		for {
			rc.ok(wire.MethodReaddirPlus, p("inode", 1, "prev_cookie", cookie, "max_entries", 2), &rd)
			for _, e := range rd.Entries {
				all = append(all, e.Name)
				if e.Stat == nil || e.Stat.Ino != e.Inode {
					t.Errorf("readdir_plus entry %+v", e)
				}
				cookie = e.Cookie
			}
			if rd.EOF {
				break
			}
			if len(rd.Entries) != 2 {
				t.Fatalf("readdir_plus batch of %d", len(rd.Entries))
			}
		}
		if len(all) != len(names) {
			t.Errorf("readdir_plus in batches: %v, readdir: %v", all, names)
		}
		rc.fails(wire.MethodReaddir, p("inode", g, "prev_cookie", -1), "ENOTDIR", 0)

		// statvfs.
		var sv wire.StatvfsResult
		rc.ok(wire.MethodStatvfs, p(), &sv)
		if sv.Bsize == 0 || sv.Blocks == 0 || sv.Namemax != 255 || sv.Flag != 0 || sv.Fsid != sr.Stat.Dev || sv.Files == 0 {
			t.Errorf("statvfs %+v (dev %d)", sv, sr.Stat.Dev)
		}

		// Xattrs.
		rc.ok(wire.MethodSetXattr, p("inode", g, "name", "user.a", "value", []byte("v1"), "flags", wire.XattrCreate), nil)
		rc.fails(wire.MethodSetXattr, p("inode", g, "name", "user.a", "value", []byte("v2"), "flags", wire.XattrCreate), "EEXIST", 0)
		rc.fails(wire.MethodSetXattr, p("inode", g, "name", "user.b", "value", []byte("v2"), "flags", wire.XattrReplace), "ENODATA", 0)
		rc.ok(wire.MethodSetXattrPath, p("path", "/g", "name", "user.b", "value", []byte{}), nil)
		var gx wire.GetXattrResult
		rc.ok(wire.MethodGetXattr, p("inode", g, "name", "user.a"), &gx)
		if string(gx.Value) != "v1" {
			t.Errorf("get_xattr %q", gx.Value)
		}
		rc.ok(wire.MethodGetXattrPath, p("path", "/g", "name", "user.b"), &gx)
		if len(gx.Value) != 0 {
			t.Errorf("get_xattr_path %q", gx.Value)
		}
		var lx wire.ListXattrResult
		rc.ok(wire.MethodListXattr, p("inode", g), &lx)
		if len(lx.Names) != 2 || lx.Names[0] != "user.a" || lx.Names[1] != "user.b" {
			t.Errorf("list_xattr %v", lx.Names)
		}
		rc.ok(wire.MethodRemoveXattr, p("inode", g, "name", "user.a"), nil)
		rc.ok(wire.MethodRemoveXattrPath, p("path", "/g", "name", "user.b"), nil)
		rc.fails(wire.MethodGetXattr, p("inode", g, "name", "user.a"), "ENODATA", 0)
		rc.fails(wire.MethodRemoveXattrPath, p("path", "/g", "name", "user.b"), "ENODATA", 0)
		rc.ok(wire.MethodListXattrPath, p("path", "/g"), &lx)
		if lx.Names == nil || len(lx.Names) != 0 {
			t.Errorf("list_xattr_path %v", lx.Names)
		}

		// Mounts: another identity; unmount makes the id bad.
		m2 := rc.mount("default", 0)
		if m2.MountID == id {
			t.Fatal("two mounts got the same id")
		}
		rc.ok(wire.MethodUnmount, obj{"mount_id": m2.MountID}, nil)
		e := rc.fails(wire.MethodGetStat, obj{"mount_id": m2.MountID, "inode": 1}, "EINVAL", 0)
		if e.Data.Reason != wire.ReasonBadMount {
			t.Errorf("stat on unmounted id: %+v", e.Data)
		}
		if e := rc.fails(wire.MethodUnmount, obj{"mount_id": m2.MountID}, "EINVAL", 0); e.Data.Reason != wire.ReasonBadMount {
			t.Errorf("second unmount: %+v", e.Data)
		}
		if e := rc.fails(wire.MethodMount, obj{"volume": "nope", "uid": 0, "gid": 0}, "ENOENT", 0); e.Data.Reason != "" {
			t.Errorf("mount of unknown volume: %+v", e.Data)
		}
		if e := rc.fails(wire.MethodMount, obj{"volume": "default", "options": 2, "uid": 0, "gid": 0}, "EINVAL", 0); e.Data.Reason != "" {
			t.Errorf("mount with bad options: %+v", e.Data)
		}
		// Genuine EINVAL has no reason.
		if e := rc.fails(wire.MethodCreate, p("inode", 1, "name", ".", "mode", 0o644), "EINVAL", 0); e.Data.Reason != "" {
			t.Errorf("EINVAL with reason: %+v", e.Data)
		}
	})
}
