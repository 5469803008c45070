package server_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// TestVolumeReadOnlyAccess: users_ro/groups_ro principals get read-only
// mounts whatever they ask for, and EROFS for every change on both
// channels, also through a read-write mount id made by another
// principal; principals on neither list get EACCES.
func TestVolumeReadOnlyAccess(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	const (
		rwToken    = "rw-0123456789abcdef"
		roToken    = "ro-0123456789abcdef"
		otherToken = "other-0123456789abcdef"
	)
	if err := os.WriteFile(tokens, []byte(rwToken+" writer *\n"+roToken+" reader *\n"+otherToken+" other *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.Options{NoTCP: true,
		Access:  `tokens_file = "` + tokens + `"`,
		Volumes: []daemontest.Volume{{Name: "shared", Extra: `users = ["token:writer"]` + "\n" + `users_ro = ["token:reader", "token:writer"]`}}})
	ctx := context.Background()

	w := rootClient(t, d.UnixPath, client.WithToken(rwToken))
	wm, err := w.Mount(ctx, "shared", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if wm.ReadOnly() {
		t.Errorf("the writer's mount is read-only (users wins over users_ro)")
	}
	st, err := wm.CreatePath(ctx, "/f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wm.Write(ctx, st.Ino, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}

	r := rootClient(t, d.UnixPath, client.WithToken(roToken))
	rm, err := r.Mount(ctx, "shared", client.MountOptions{})
	if err != nil {
		t.Fatalf("reader mounting read-write (forced read-only): %v", err)
	}
	if !rm.ReadOnly() {
		t.Errorf("the reader's mount is not read-only")
	}
	buf := make([]byte, 4)
	if n, err := rm.Read(ctx, st.Ino, buf, 0); err != nil || string(buf[:n]) != "data" {
		t.Errorf("reader reads: %q %v", buf[:n], err)
	}
	if _, err := rm.Write(ctx, st.Ino, []byte("x"), 0); errnoName(err) != "read-only file system" {
		t.Errorf("reader writes (binary): %v", err)
	}
	if _, err := rm.CreatePath(ctx, "/g", 0o644); errnoName(err) != "read-only file system" {
		t.Errorf("reader creates (JSON): %v", err)
	}
	if _, err := rm.Create(ctx, 1, "g", 0o644); errnoName(err) != "read-only file system" {
		t.Errorf("reader creates (binary): %v", err)
	}

	// The reader's connection using the writer's read-write mount id.
	rc := dial(t, "unix", d.UnixPath)
	rc.ok("auth", map[string]any{"token": roToken}, nil)
	rc.fails("mkdir_path", map[string]any{"mount_id": wm.MountID(), "path": "/d", "mode": 0o755}, "EROFS", 0)
	rc.ok("get_stat", map[string]any{"mount_id": wm.MountID(), "inode": st.Ino}, nil)

	// Neither list: EACCES.
	o := rootClient(t, d.UnixPath, client.WithToken(otherToken))
	if _, err := o.Mount(ctx, "shared", client.MountOptions{ReadOnly: true}); errnoName(err) != "permission denied" {
		t.Errorf("unlisted principal: %v", err)
	}
}
