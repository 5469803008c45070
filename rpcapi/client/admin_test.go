package client

import (
	"context"
	"strings"
	"testing"
)

// TestVolumesStatus calls volumes and status, which need no mount.
func TestVolumesStatus(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	c, err := Dial(ctx, d.unix())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vs, err := c.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Name != "default" || vs[0].Mounts != 0 || vs[0].SizeBytes == 0 || vs[0].Inodes == 0 {
		t.Fatalf("volumes %+v", vs)
	}
	if _, err := c.Mount(ctx, "default", MountOptions{UID: 1, GID: 1}); err != nil {
		t.Fatal(err)
	}
	if vs, err = c.Volumes(ctx); err != nil || vs[0].Mounts != 1 {
		t.Fatalf("volumes after a mount: %+v %v", vs, err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Server, "proxyfsd ") || st.Mounts != 1 || st.Connections < 1 ||
		len(st.Volumes) != 1 || st.Volumes[0].Name != "default" || st.Volumes[0].State != "ok" {
		t.Fatalf("status %+v", st)
	}
}
