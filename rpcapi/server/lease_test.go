package server_test

import (
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// waitMounts polls /metrics until the mount gauges read mounts and
// orphaned, and returns the samples; it fails the test after 20s.
func waitMounts(t *testing.T, d *daemontest.Daemon, mounts, orphaned float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, d)
		if m["proxyfs_mounts{}"] == mounts && m["proxyfs_mounts_orphaned{}"] == orphaned {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mounts %v (orphaned %v), want %v (orphaned %v)",
				m["proxyfs_mounts{}"], m["proxyfs_mounts_orphaned{}"], mounts, orphaned)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getStat calls get_stat on the root and returns the error's name ("" for
// success) and reason.
func getStat(rc *rawConn, id uint64) (string, string) {
	rc.t.Helper()
	r := rc.call(wire.MethodGetStat, obj{"mount_id": id, "inode": 1})
	if r.Error == nil {
		return "", ""
	}
	return r.Error.Data.Name, r.Error.Data.Reason
}

// binGetStat is getStat on a binary channel: errno and bad-mount flag.
func binGetStat(bc *binConn, id uint64) (uint32, bool) {
	bc.t.Helper()
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 9, MountID: id, Inode: 1}, nil)
	h, _ := bc.reply()
	return h.Errno, h.Flags&wire.ReplyFlagBadMount != 0
}

// TestMountsReclaimedAfterClose: connections that mount and close without
// unmounting leave nothing behind once mount_grace is over; a mount whose
// connection stays open stays.
func TestMountsReclaimedAfterClose(t *testing.T) {
	const cycles = 40
	d := daemontest.Start(t, daemontest.Options{Metrics: true, MountGrace: 300 * time.Millisecond})
	keep := dial(t, "tcp", d.TCPAddr)
	kept := keep.mount("default", 0).MountID
	before := scrape(t, d)["proxyfs_mounts_reclaimed_total{}"]
	var last uint64
	for i := range cycles {
		network, addr := "tcp", d.TCPAddr
		if i%2 == 1 {
			network, addr = "unix", d.UnixPath
		}
		rc := dial(t, network, addr)
		last = rc.mount("default", 0).MountID
		rc.c.Close()
	}
	m := waitMounts(t, d, 1, 0)
	if got := m["proxyfs_mounts_reclaimed_total{}"] - before; got != cycles {
		t.Errorf("proxyfs_mounts_reclaimed_total moved by %v, want %d", got, cycles)
	}
	if name, reason := getStat(keep, kept); name != "" {
		t.Fatalf("the mount of the open connection: %s %s", name, reason)
	}
	if name, reason := getStat(keep, last); name != "EINVAL" || reason != wire.ReasonBadMount {
		t.Fatalf("a reclaimed mount: %q %q, want bad_mount", name, reason)
	}
	// Unmounted mounts are not reclaimed ones.
	rc := dial(t, "tcp", d.TCPAddr)
	rc.ok(wire.MethodUnmount, obj{"mount_id": rc.mount("default", 0).MountID}, nil)
	rc.c.Close()
	time.Sleep(400 * time.Millisecond)
	if got := waitMounts(t, d, 1, 0)["proxyfs_mounts_reclaimed_total{}"] - before; got != cycles {
		t.Errorf("after an unmount, reclaimed moved by %v, want %d", got, cycles)
	}
}

// TestMountReconnectWithinGrace: a client whose connections closed comes
// back on new ones (JSON and binary) within mount_grace and goes on with
// its mount id; the new connections hold it past the grace. Once they
// close too and the grace runs out, the id is a bad mount.
func TestMountReconnectWithinGrace(t *testing.T) {
	const grace = 1500 * time.Millisecond
	d := daemontest.Start(t, daemontest.Options{Metrics: true, MountGrace: grace})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)
	bc := dialBin(t, "unix", d.UnixPath)
	if errno, _ := binGetStat(bc, id); errno != 0 {
		t.Fatalf("binary get_stat: errno %d", errno)
	}
	rc.c.Close()
	bc.c.Close()
	waitMounts(t, d, 1, 1) // both closed: in its grace

	rc2 := dial(t, "unix", d.UnixPath)
	if name, reason := getStat(rc2, id); name != "" {
		t.Fatalf("reconnected within the grace: %s %s", name, reason)
	}
	bc2 := dialBin(t, "tcp", d.TCPAddr)
	bc2.request(wire.RequestHeader{Opcode: wire.OpWrite, ID: 1, MountID: id, Inode: f.Inode, Length: 2}, []byte("hi"))
	if h, _ := bc2.reply(); h.Errno != 0 {
		t.Fatalf("binary write after reconnecting: %+v", h)
	}
	waitMounts(t, d, 1, 0)
	time.Sleep(grace + 500*time.Millisecond)
	waitMounts(t, d, 1, 0)
	if name, reason := getStat(rc2, id); name != "" {
		t.Fatalf("held by the new connections past the grace: %s %s", name, reason)
	}
	rc2.c.Close()
	bc2.c.Close()
	waitMounts(t, d, 0, 0)
	if name, reason := getStat(dial(t, "tcp", d.TCPAddr), id); name != "EINVAL" || reason != wire.ReasonBadMount {
		t.Fatalf("after the grace: %q %q, want bad_mount", name, reason)
	}
	d.Check(t)
}

// TestMountSharedByConnections: a mount made on one connection and used
// on others (JSON and binary, as the clients' pools do) lives on when the
// connection that made it closes, and is reclaimed only after the last
// one closes.
func TestMountSharedByConnections(t *testing.T) {
	const grace = 300 * time.Millisecond
	d := daemontest.Start(t, daemontest.Options{Metrics: true, MountGrace: grace})
	a := dial(t, "tcp", d.TCPAddr)
	id := a.mount("default", 0).MountID
	b := dial(t, "unix", d.UnixPath)
	if name, _ := getStat(b, id); name != "" {
		t.Fatalf("JSON use on a second connection: %s", name)
	}
	bc := dialBin(t, "tcp", d.TCPAddr)
	if errno, _ := binGetStat(bc, id); errno != 0 {
		t.Fatalf("binary use: errno %d", errno)
	}
	a.c.Close()
	time.Sleep(grace + 300*time.Millisecond)
	waitMounts(t, d, 1, 0)
	if name, _ := getStat(b, id); name != "" {
		t.Fatalf("JSON after the mounting connection closed: %s", name)
	}
	b.c.Close()
	time.Sleep(grace + 300*time.Millisecond)
	if errno, bad := binGetStat(bc, id); errno != 0 || bad {
		t.Fatalf("binary after both JSON connections closed: errno %d bad_mount %v", errno, bad)
	}
	bc.c.Close()
	waitMounts(t, d, 0, 0)
	bc2 := dialBin(t, "tcp", d.TCPAddr)
	if errno, bad := binGetStat(bc2, id); errno != 22 || !bad {
		t.Fatalf("binary after the last connection closed and the grace: errno %d bad_mount %v", errno, bad)
	}
}

// TestMaxMountsPerConnection: a connection holds at most
// max_mounts_per_connection mounts, made or used; one more is EMFILE on
// both channels; unmounting makes room, and unmount works at the cap.
func TestMaxMountsPerConnection(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Metrics: true, MaxMountsPerConnection: 2})
	rc := dial(t, "tcp", d.TCPAddr)
	m1, m2 := rc.mount("default", 0).MountID, rc.mount("default", 0).MountID
	params := obj{"volume": "default", "user": "u", "uid": 1, "gid": 1}
	rc.fails(wire.MethodMount, params, "EMFILE", 24)
	other := dial(t, "tcp", d.TCPAddr)
	m3 := other.mount("default", 0).MountID
	rc.fails(wire.MethodGetStat, obj{"mount_id": m3, "inode": 1}, "EMFILE", 24)
	if name, _ := getStat(rc, m1); name != "" {
		t.Fatalf("a held mount at the cap: %s", name)
	}
	bc := dialBin(t, "tcp", d.TCPAddr)
	for _, id := range []uint64{m1, m2} {
		if errno, _ := binGetStat(bc, id); errno != 0 {
			t.Fatalf("binary use: errno %d", errno)
		}
	}
	if errno, bad := binGetStat(bc, m3); errno != 24 || bad {
		t.Fatalf("binary use over the cap: errno %d bad_mount %v", errno, bad)
	}
	rc.ok(wire.MethodUnmount, obj{"mount_id": m3}, nil) // not held by rc: no room needed
	rc.ok(wire.MethodUnmount, obj{"mount_id": m2}, nil)
	rc.mount("default", 0)
	rc.fails(wire.MethodMount, params, "EMFILE", 24)
	waitMounts(t, d, 2, 0)
}
