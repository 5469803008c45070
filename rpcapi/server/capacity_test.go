package server_test

import (
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestCapacityENOSPC fills a volume with a 1 MiB capacity: writes past it
// fail with ENOSPC on both channels, nothing acknowledged is damaged, the
// daemon keeps serving, and space comes back when a file is removed,
// also after a restart.
func TestCapacityENOSPC(t *testing.T) {
	const capacity = 1 << 20
	d := daemontest.Start(t, daemontest.Options{Volumes: []daemontest.Volume{{Name: "default", CapacityBytes: capacity}}})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var a, b wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/a", "mode": 0o644}, &a)
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/b", "mode": 0o644}, &b)
	full := make([]byte, capacity-10)
	for i := range full {
		full[i] = byte(i)
	}
	bc := dialBin(t, "tcp", d.TCPAddr)
	bc.request(wire.RequestHeader{Opcode: wire.OpWrite, ID: 1, MountID: id, Inode: a.Inode, Length: uint32(len(full))}, full)
	if h, _ := bc.reply(); h.Errno != 0 {
		t.Fatalf("write within capacity: %+v", h)
	}
	bc.request(wire.RequestHeader{Opcode: wire.OpWrite, ID: 2, MountID: id, Inode: b.Inode, Length: 11}, []byte("eleven byte"))
	if h, _ := bc.reply(); h.Errno != 28 {
		t.Fatalf("binary write past capacity: %+v, want ENOSPC", h)
	}
	rc.fails(wire.MethodWrite, obj{"mount_id": id, "inode": b.Inode, "offset": 0, "data": make([]byte, 11)}, "ENOSPC", 28)
	rc.fails(wire.MethodResize, obj{"mount_id": id, "inode": b.Inode, "size": 11}, "ENOSPC", 28)
	var vfs wire.StatvfsResult
	rc.ok(wire.MethodStatvfs, obj{"mount_id": id}, &vfs)
	if vfs.Blocks*vfs.Frsize != capacity || vfs.Bavail != 0 {
		t.Errorf("statvfs when full: %+v", vfs)
	}
	// Still serving, and the acknowledged data is intact.
	bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 3, MountID: id, Inode: a.Inode, Offset: 1000, Length: 16}, nil)
	if h, data := bc.reply(); h.Errno != 0 || string(data) != string(full[1000:1016]) {
		t.Fatalf("read back: %+v", h)
	}
	rc.ok(wire.MethodMkdirPath, obj{"mount_id": id, "path": "/dir", "mode": 0o755}, nil)
	// The fault goes away: remove a file, and writes work again.
	rc.ok(wire.MethodUnlinkPath, obj{"mount_id": id, "path": "/a"}, nil)
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": b.Inode, "offset": 0, "data": make([]byte, 11)}, nil)
	d.Restart()
	rc = dial(t, "unix", d.UnixPath)
	id = rc.mount("default", 0).MountID
	rc.ok(wire.MethodStatvfs, obj{"mount_id": id}, &vfs)
	if vfs.Bavail != capacity/vfs.Frsize-1 {
		t.Errorf("statvfs after restart: %+v", vfs)
	}
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": b.Inode, "offset": 11, "data": make([]byte, capacity-4096-11)}, nil)
	rc.fails(wire.MethodWrite, obj{"mount_id": id, "inode": b.Inode, "offset": capacity - 4096, "data": make([]byte, 4097)}, "ENOSPC", 28)
	d.Check(t)
}
