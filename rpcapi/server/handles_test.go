package server_test

import (
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// open and close on the wire: params, errors, and handles bound to their
// mount.
func TestOpenCloseWire(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Metrics: true})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	other := rc.mount("default", 0).MountID
	roID := rc.mount("default", wire.MountReadOnly).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)

	// flags and reclaim are optional.
	var o wire.OpenResult
	rc.ok(wire.MethodOpen, obj{"mount_id": id, "inode": f.Inode}, &o)
	if o.Fh == 0 || o.Fh >= 1<<53 || o.Stat.Ino != f.Inode || o.Stat.Nlink != 1 {
		t.Fatalf("open: %+v", o)
	}
	var o2 wire.OpenResult
	rc.ok(wire.MethodOpen, obj{"mount_id": id, "inode": f.Inode, "flags": 2, "reclaim": false}, &o2)
	if o2.Fh == o.Fh {
		t.Fatalf("two opens gave the same handle %d", o.Fh)
	}
	rc.fails(wire.MethodOpen, obj{"mount_id": id, "inode": f.Inode, "flags": 3}, "EINVAL", 22)
	rc.fails(wire.MethodOpen, obj{"mount_id": id, "inode": f.Inode, "flags": 0o100}, "EINVAL", 22)
	rc.fails(wire.MethodOpen, obj{"mount_id": id, "inode": 9999}, "ENOENT", 2)
	rc.fails(wire.MethodOpen, obj{"mount_id": id, "inode": 1, "flags": 1}, "EISDIR", 21)
	rc.fails(wire.MethodOpen, obj{"mount_id": roID, "inode": f.Inode, "flags": 1}, "EROFS", 30)
	rc.fails(wire.MethodOpen, obj{"mount_id": id}, "EINVAL", -32602)
	var dirH wire.OpenResult
	rc.ok(wire.MethodOpen, obj{"mount_id": roID, "inode": 1}, &dirH)

	// A handle is valid with its own mount only.
	rc.fails(wire.MethodClose, obj{"mount_id": other, "fh": o.Fh}, "EBADF", 9)
	rc.fails(wire.MethodClose, obj{"mount_id": id, "fh": 12345}, "EBADF", 9)
	rc.fails(wire.MethodClose, obj{"mount_id": id, "fh": dirH.Fh}, "EBADF", 9)
	rc.ok(wire.MethodClose, obj{"mount_id": id, "fh": o.Fh}, nil)
	rc.fails(wire.MethodClose, obj{"mount_id": id, "fh": o.Fh}, "EBADF", 9)
	rc.ok(wire.MethodClose, obj{"mount_id": roID, "fh": dirH.Fh}, nil)

	// The remaining handle keeps the unlinked file; a plain open of it is
	// ENOENT, a reclaim open works (it is on the orphan list).
	rc.ok(wire.MethodUnlinkPath, obj{"mount_id": other, "path": "/f"}, nil)
	var st wire.StatResult
	rc.ok(wire.MethodGetStat, obj{"mount_id": other, "inode": f.Inode}, &st)
	if st.Stat.Nlink != 0 {
		t.Fatalf("unlinked open file: %+v", st.Stat)
	}
	rc.fails(wire.MethodOpen, obj{"mount_id": other, "inode": f.Inode}, "ENOENT", 2)
	var o3 wire.OpenResult
	rc.ok(wire.MethodOpen, obj{"mount_id": other, "inode": f.Inode, "reclaim": true}, &o3)
	rc.ok(wire.MethodClose, obj{"mount_id": other, "fh": o3.Fh}, nil)
	rc.ok(wire.MethodGetStat, obj{"mount_id": other, "inode": f.Inode}, &st)
	rc.ok(wire.MethodClose, obj{"mount_id": id, "fh": o2.Fh}, nil)
	rc.fails(wire.MethodGetStat, obj{"mount_id": other, "inode": f.Inode}, "ENOENT", 2)

	if m := scrape(t, d); m["proxyfs_requests_total{channel=json,method=open}"] == 0 {
		t.Errorf("open not counted under its own method label")
	}
	d.Check(t)
}

// The handles of a mount reclaimed after mount_grace close with it: the
// orphan it kept is freed.
func TestHandlesDieWithReclaimedMount(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Metrics: true, MountGrace: 300 * time.Millisecond})
	keep := dial(t, "tcp", d.TCPAddr)
	kid := keep.mount("default", 0).MountID
	var f wire.NewInodeResult
	keep.ok(wire.MethodCreatePath, obj{"mount_id": kid, "path": "/f", "mode": 0o644}, &f)

	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var o wire.OpenResult
	rc.ok(wire.MethodOpen, obj{"mount_id": id, "inode": f.Inode}, &o)
	keep.ok(wire.MethodUnlinkPath, obj{"mount_id": kid, "path": "/f"}, nil)
	keep.ok(wire.MethodGetStat, obj{"mount_id": kid, "inode": f.Inode}, nil)
	rc.c.Close()
	waitMounts(t, d, 1, 0)
	keep.fails(wire.MethodGetStat, obj{"mount_id": kid, "inode": f.Inode}, "ENOENT", 2)
	d.Check(t)
}
