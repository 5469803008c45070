package server_test

import (
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// mountAs mounts volume as uid:gid with the supplementary groups.
func (rc *rawConn) mountAs(volume string, uid, gid uint32, groups ...uint32) uint64 {
	rc.t.Helper()
	var m wire.MountResult
	p := obj{"volume": volume, "user": "u", "uid": uid, "gid": gid}
	if groups != nil {
		p["groups"] = groups
	}
	rc.ok(wire.MethodMount, p, &m)
	return m.MountID
}

// p builds the params of a call on mount id from name, value pairs.
func p(id uint64, kv ...any) obj {
	o := obj{"mount_id": id}
	for i := 0; i < len(kv); i += 2 {
		o[kv[i].(string)] = kv[i+1]
	}
	return o
}

// binCaller sends binary requests on one mount.
type binCaller struct {
	t      *testing.T
	bc     *binConn
	id     uint64
	nextID uint64
}

func (b *binCaller) errno(op uint16, ino, off uint64, length uint32, payload []byte) uint32 {
	b.t.Helper()
	b.nextID++
	if wire.HasPayload(op) {
		length = uint32(len(payload))
	}
	b.bc.request(wire.RequestHeader{Opcode: op, ID: b.nextID, MountID: b.id, Inode: ino, Offset: off, Length: length}, payload)
	h, _ := b.bc.reply()
	if h.ID != b.nextID {
		b.t.Fatalf("reply %+v to request %d", h, b.nextID)
	}
	return h.Errno
}

const (
	eperm  = 1
	eacces = 13
	erofs  = 30
)

// TestPermissions checks, end to end on both channels, that the server
// runs each call as the mount's identity: a mount as uid 2000 can neither
// read nor change a mode 0600 file of uid 1000, nor chmod or chown it; a
// supplementary group given at mount counts; the sticky bit holds.
func TestPermissions(t *testing.T) {
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		rc := dial(t, network, addr)
		root := rc.mount("default", 0).MountID
		// Root sets the scene: /home/f (0600, 1000:1000, "secret"), and
		// /tmp (1777).
		var home, f, tmp wire.NewInodeResult
		rc.ok(wire.MethodMkdirPath, p(root, "path", "/home", "mode", 0o755), &home)
		rc.ok(wire.MethodCreatePath, p(root, "path", "/home/f", "mode", 0o600), &f)
		rc.ok(wire.MethodWrite, p(root, "inode", f.Inode, "offset", 0, "data", []byte("secret")), nil)
		rc.ok(wire.MethodSetXattr, p(root, "inode", f.Inode, "name", "user.k", "value", []byte("v")), nil)
		rc.ok(wire.MethodChown, p(root, "inode", f.Inode, "uid", 1000, "gid", 1000), nil)
		rc.ok(wire.MethodMkdirPath, p(root, "path", "/tmp", "mode", 0o1777), &tmp)

		owner := rc.mountAs("default", 1000, 1000)
		other := rc.mountAs("default", 2000, 2000)

		// The owner reads; the other user may stat but not read.
		var rr wire.ReadResult
		rc.ok(wire.MethodRead, p(owner, "inode", f.Inode, "offset", 0, "length", 100), &rr)
		if string(rr.Data) != "secret" {
			t.Fatalf("owner read %q", rr.Data)
		}
		rc.ok(wire.MethodGetStatPath, p(other, "path", "/home/f"), nil)
		rc.fails(wire.MethodRead, p(other, "inode", f.Inode, "offset", 0, "length", 100), "EACCES", 13)
		rc.fails(wire.MethodWrite, p(other, "inode", f.Inode, "offset", 0, "data", []byte("x")), "EACCES", 13)
		rc.fails(wire.MethodResize, p(other, "inode", f.Inode, "size", 0), "EACCES", 13)
		rc.fails(wire.MethodOpen, p(other, "inode", f.Inode, "flags", 0), "EACCES", 13)
		rc.fails(wire.MethodGetXattr, p(other, "inode", f.Inode, "name", "user.k"), "EACCES", 13)
		rc.fails(wire.MethodCopyRange, p(other, "src_inode", f.Inode, "src_offset", 0, "dst_inode", f.Inode, "dst_offset", 100, "length", 6), "EACCES", 13)
		rc.fails(wire.MethodChmod, p(other, "inode", f.Inode, "mode", 0o666), "EPERM", 1)
		rc.fails(wire.MethodChmodPath, p(other, "path", "/home/f", "mode", 0o666), "EPERM", 1)
		rc.fails(wire.MethodChown, p(other, "inode", f.Inode, "uid", 2000, "gid", -1), "EPERM", 1)
		rc.fails(wire.MethodChown, p(owner, "inode", f.Inode, "uid", 2000, "gid", -1), "EPERM", 1)
		rc.fails(wire.MethodSettime, p(other, "inode", f.Inode, "mtime", obj{"sec": 1, "nsec": 0}), "EPERM", 1)
		rc.fails(wire.MethodSetattr, p(other, "inode", f.Inode, "mask", wire.SetAtimeNow|wire.SetMtimeNow), "EACCES", 13)
		rc.fails(wire.MethodSetXattr, p(other, "inode", f.Inode, "name", "trusted.x", "value", []byte("v")), "EPERM", 1)
		// Nor may it create in /home (root's, 0755) or remove f.
		rc.fails(wire.MethodCreatePath, p(other, "path", "/home/g", "mode", 0o644), "EACCES", 13)
		rc.fails(wire.MethodUnlinkPath, p(other, "path", "/home/f"), "EACCES", 13)
		rc.fails(wire.MethodRenamePath, p(other, "src_path", "/home/f", "dst_path", "/tmp/f"), "EACCES", 13)
		var st wire.StatResult
		rc.ok(wire.MethodGetStat, p(root, "inode", f.Inode), &st)
		if st.Stat.Mode != 0o100600 || st.Stat.UID != 1000 || st.Stat.Size != 6 {
			t.Fatalf("f after refused calls: %+v", st.Stat)
		}

		// The binary channel checks the same way.
		bc := dialBin(t, network, addr)
		bo := &binCaller{t: t, bc: bc, id: other}
		if e := bo.errno(wire.OpRead, f.Inode, 0, 100, nil); e != eacces {
			t.Fatalf("binary READ as other: errno %d", e)
		}
		if e := bo.errno(wire.OpWrite, f.Inode, 0, 0, []byte("x")); e != eacces {
			t.Fatalf("binary WRITE as other: errno %d", e)
		}
		if e := bo.errno(wire.OpCreate, home.Inode, 0o644, 0, []byte("g")); e != eacces {
			t.Fatalf("binary CREATE as other: errno %d", e)
		}
		if e := bo.errno(wire.OpUnlink, home.Inode, 0, 0, []byte("f")); e != eacces {
			t.Fatalf("binary UNLINK as other: errno %d", e)
		}
		if e := bo.errno(wire.OpGetStat, f.Inode, 0, 0, nil); e != 0 {
			t.Fatalf("binary GET_STAT as other: errno %d", e)
		}
		rc.ok(wire.MethodChmod, p(root, "inode", home.Inode, "mode", 0o700), nil)
		for _, op := range []uint16{wire.OpLookup, wire.OpLookupCI} {
			if e := bo.errno(op, home.Inode, 0, 0, []byte("f")); e != eacces {
				t.Fatalf("binary %d in a 0700 directory as other: errno %d", op, e)
			}
		}
		if e := bo.errno(wire.OpReaddirPlus, home.Inode, uint64(1<<64-1), 0, nil); e != eacces {
			t.Fatalf("binary READDIR_PLUS of a 0700 directory as other: errno %d", e)
		}
		rc.fails(wire.MethodLookupPath, p(other, "path", "/home/f"), "EACCES", 13)
		rc.fails(wire.MethodReaddir, p(other, "inode", home.Inode, "prev_cookie", -1), "EACCES", 13)
		rc.ok(wire.MethodChmod, p(root, "inode", home.Inode, "mode", 0o755), nil)
		bw := &binCaller{t: t, bc: bc, id: owner}
		if e := bw.errno(wire.OpRead, f.Inode, 0, 100, nil); e != 0 {
			t.Fatalf("binary READ as owner: errno %d", e)
		}

		// A supplementary group given at mount counts.
		rc.ok(wire.MethodChmod, p(root, "inode", f.Inode, "mode", 0o640), nil)
		member := rc.mountAs("default", 2000, 2000, 7, 1000)
		rc.ok(wire.MethodRead, p(member, "inode", f.Inode, "offset", 0, "length", 100), &rr)
		rc.fails(wire.MethodRead, p(other, "inode", f.Inode, "offset", 0, "length", 100), "EACCES", 13)
		groups := make([]uint32, 33)
		rc.fails(wire.MethodMount, obj{"volume": "default", "uid": 1, "gid": 1, "groups": groups}, "EINVAL", 22)

		// In /tmp (1777) each user removes only their own files.
		rc.ok(wire.MethodCreatePath, p(owner, "path", "/tmp/mine", "mode", 0o644), nil)
		rc.fails(wire.MethodUnlinkPath, p(other, "path", "/tmp/mine"), "EPERM", 1)
		rc.fails(wire.MethodRenamePath, p(other, "src_path", "/tmp/mine", "dst_path", "/tmp/theirs"), "EPERM", 1)
		rc.ok(wire.MethodUnlinkPath, p(owner, "path", "/tmp/mine"), nil)
	})
}

// TestRootSquash: on a root_squash volume a mount as uid 0 acts as the
// anonymous ids, 65534 by default: its new files are 65534's, root's
// files are closed to it, and group 0 is squashed too.
func TestRootSquash(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoUnix: true})
	rc := dial(t, "tcp", d.TCPAddr)
	root := rc.mount("default", 0).MountID
	rc.ok(wire.MethodMkdirPath, p(root, "path", "/pub", "mode", 0o777), nil)
	rc.ok(wire.MethodCreatePath, p(root, "path", "/secret", "mode", 0o600), nil)
	rc.ok(wire.MethodCreatePath, p(root, "path", "/staff", "mode", 0o060), nil)
	rc.ok(wire.MethodCreatePath, p(root, "path", "/pub/open", "mode", 0o666), nil)

	d.RestartWith(func(o *daemontest.Options) { o.Volumes[0].RootSquash = true })
	rc = dial(t, "tcp", d.TCPAddr)
	var mr wire.MountResult
	rc.ok(wire.MethodMount, obj{"volume": "default", "uid": 0, "gid": 0}, &mr)
	if mr.UID == nil || *mr.UID != 65534 || mr.GID == nil || *mr.GID != 65534 {
		t.Fatalf("mount result of a squashed root: %+v", mr)
	}
	sq := rc.mountAs("default", 0, 0, 0)
	var cr wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, p(sq, "path", "/pub/new", "mode", 0o644), &cr)
	if cr.Stat.UID != 65534 || cr.Stat.GID != 65534 {
		t.Fatalf("file made by squashed root: %d:%d", cr.Stat.UID, cr.Stat.GID)
	}
	rc.fails(wire.MethodCreatePath, p(sq, "path", "/top", "mode", 0o644), "EACCES", 13)
	rc.ok(wire.MethodGetStatPath, p(sq, "path", "/secret"), nil)
	rc.fails(wire.MethodRead, p(sq, "inode", lookupIno(t, rc, sq, "/secret"), "offset", 0, "length", 1), "EACCES", 13)
	rc.fails(wire.MethodRead, p(sq, "inode", lookupIno(t, rc, sq, "/staff"), "offset", 0, "length", 1), "EACCES", 13)
	rc.fails(wire.MethodChmodPath, p(sq, "path", "/secret", "mode", 0o666), "EPERM", 1)
	rc.fails(wire.MethodChownPath, p(sq, "path", "/pub/open", "uid", 0, "gid", -1), "EPERM", 1)
	rc.ok(wire.MethodWrite, p(sq, "inode", lookupIno(t, rc, sq, "/pub/open"), "offset", 0, "data", []byte("x")), nil)
	// Group 0 is squashed whoever claims it; other users are not.
	g0 := rc.mountAs("default", 1000, 0)
	rc.fails(wire.MethodRead, p(g0, "inode", lookupIno(t, rc, g0, "/staff"), "offset", 0, "length", 1), "EACCES", 13)
	rc.ok(wire.MethodChownPath, p(sq, "path", "/pub/new", "uid", -1, "gid", 65534), nil)
	u := rc.mountAs("default", 1000, 1000)
	var cu wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, p(u, "path", "/pub/u", "mode", 0o644), &cu)
	if cu.Stat.UID != 1000 || cu.Stat.GID != 1000 {
		t.Fatalf("file made by uid 1000: %d:%d", cu.Stat.UID, cu.Stat.GID)
	}

	// anon_uid and anon_gid choose the identity.
	d.RestartWith(func(o *daemontest.Options) { o.Volumes[0].AnonUID, o.Volumes[0].AnonGID = 4242, 4343 })
	rc = dial(t, "tcp", d.TCPAddr)
	sq = rc.mountAs("default", 0, 0)
	rc.ok(wire.MethodCreatePath, p(sq, "path", "/pub/new2", "mode", 0o644), &cr)
	if cr.Stat.UID != 4242 || cr.Stat.GID != 4343 {
		t.Fatalf("file made by squashed root with anon ids: %d:%d", cr.Stat.UID, cr.Stat.GID)
	}
	d.Check(t)
}

func lookupIno(t *testing.T, rc *rawConn, id uint64, path string) uint64 {
	t.Helper()
	var r wire.InodeResult
	rc.ok(wire.MethodLookupPath, obj{"mount_id": id, "path": path}, &r)
	return r.Inode
}

// TestReadOnlyVolume: on a read_only volume every change is EROFS, on
// both channels and whoever asks (root too); reads work and statvfs says
// ST_RDONLY.
func TestReadOnlyVolume(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoUnix: true})
	rc := dial(t, "tcp", d.TCPAddr)
	root := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, p(root, "path", "/f", "mode", 0o644), &f)
	rc.ok(wire.MethodWrite, p(root, "inode", f.Inode, "offset", 0, "data", []byte("kept")), nil)

	d.RestartWith(func(o *daemontest.Options) { o.Volumes[0].ReadOnly = true })
	rc = dial(t, "tcp", d.TCPAddr)
	root = rc.mount("default", 0).MountID
	var rr wire.ReadResult
	rc.ok(wire.MethodRead, p(root, "inode", f.Inode, "offset", 0, "length", 10), &rr)
	if string(rr.Data) != "kept" {
		t.Fatalf("read %q", rr.Data)
	}
	var sv wire.StatvfsResult
	rc.ok(wire.MethodStatvfs, p(root), &sv)
	if sv.Flag != 1 {
		t.Fatalf("statvfs flag %d, want ST_RDONLY", sv.Flag)
	}
	for _, c := range []struct {
		method string
		params obj
	}{
		{wire.MethodCreatePath, p(root, "path", "/g", "mode", 0o644)},
		{wire.MethodMkdir, p(root, "inode", 1, "name", "d", "mode", 0o755)},
		{wire.MethodWrite, p(root, "inode", f.Inode, "offset", 0, "data", []byte("x"))},
		{wire.MethodResize, p(root, "inode", f.Inode, "size", 0)},
		{wire.MethodChmod, p(root, "inode", f.Inode, "mode", 0o600)},
		{wire.MethodSetattr, p(root, "inode", f.Inode, "mask", wire.SetAtimeNow|wire.SetMtimeNow)},
		{wire.MethodSetXattr, p(root, "inode", f.Inode, "name", "user.a", "value", []byte("v"))},
		{wire.MethodUnlinkPath, p(root, "path", "/f")},
		{wire.MethodRenamePath, p(root, "src_path", "/f", "dst_path", "/g")},
		{wire.MethodFallocate, p(root, "inode", f.Inode, "mode", 0, "offset", 0, "length", 10)},
		{wire.MethodOpen, p(root, "inode", f.Inode, "flags", 2)},
	} {
		rc.fails(c.method, c.params, "EROFS", 30)
	}
	var op wire.OpenResult
	rc.ok(wire.MethodOpen, p(root, "inode", f.Inode, "flags", 0), &op)
	rc.ok(wire.MethodClose, p(root, "fh", op.Fh), nil)
	bc := dialBin(t, "tcp", d.TCPAddr)
	b := &binCaller{t: t, bc: bc, id: root}
	if e := b.errno(wire.OpWrite, f.Inode, 0, 0, []byte("x")); e != erofs {
		t.Fatalf("binary WRITE: errno %d", e)
	}
	if e := b.errno(wire.OpCreate, 1, 0o644, 0, []byte("h")); e != erofs {
		t.Fatalf("binary CREATE: errno %d", e)
	}
	if e := b.errno(wire.OpRead, f.Inode, 0, 10, nil); e != 0 {
		t.Fatalf("binary READ: errno %d", e)
	}
	d.Check(t)
}
