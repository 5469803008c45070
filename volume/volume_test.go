package volume_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/volume"

	_ "github.com/proxyfs/proxyfs/vfsbackend/local"
	_ "github.com/proxyfs/proxyfs/vfsbackend/mem"
)

func config(t *testing.T, body string) *conf.Config {
	t.Helper()
	cfg, err := conf.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestLifecycle: a new directory is not formatted without auto_format,
// Format creates it, OpenAll then opens it with the configured policy,
// Check finds it consistent, and two volumes of one name get two devices.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	body := fmt.Sprintf(`
[[volume]]
name = "a"
engine = "local"
path = %q
root_squash = true
anon_uid = 7

[[volume]]
name = "m"
engine = "memory"
read_only = true
`, filepath.Join(dir, "a"))
	cfg := config(t, body)

	if _, err := volume.OpenAll(ctx, cfg, volume.Options{}); err == nil {
		t.Fatal("OpenAll formatted a new volume without auto_format")
	}
	lines, err := volume.Format(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "formatted a new, empty volume") || !strings.Contains(lines[1], "nothing to format") {
		t.Fatalf("format said %q", lines)
	}
	again, err := volume.Format(ctx, cfg, nil)
	if err != nil || !strings.Contains(again[0], "left as it is") {
		t.Fatalf("second format: %q, %v", again, err)
	}

	vols, err := volume.OpenAll(ctx, cfg, volume.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, m := vols[0], vols[1]
	if a.Name != "a" || !a.RootSquash || a.Anon.UID != 7 || a.Anon.GID != 65534 || a.ReadOnly {
		t.Errorf("volume a: %+v", a)
	}
	if !m.ReadOnly || m.Formatted() {
		t.Errorf("volume m: read-only %v, formatted %v", m.ReadOnly, m.Formatted())
	}
	if a.Dev == m.Dev || a.Dev == 0 {
		t.Errorf("devices %d and %d", a.Dev, m.Dev)
	}
	if err := a.Health(); err != nil {
		t.Errorf("health: %v", err)
	}
	if u, err := a.Usage(); err != nil || u.SizeBytes == 0 || u.Inodes == 0 {
		t.Errorf("usage %+v, %v", u, err)
	}
	for _, v := range vols {
		if err := v.Sync(ctx); err != nil {
			t.Error(err)
		}
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	}

	probs, err := volume.Check(ctx, cfg, nil, nil)
	if err != nil || len(probs) != 0 {
		t.Fatalf("check: %q, %v", probs, err)
	}

	// The directory deleted: Health would fail a served volume; a check
	// reports it cannot open it (and formats nothing).
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	probs, err = volume.Check(ctx, cfg, nil, nil)
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0], `volume "a": cannot open`) {
		t.Fatalf("check of a deleted volume: %q, %v", probs, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("check created the directory again: %v", err)
	}
}

// TestDev: the device follows the identity, not the name.
func TestDev(t *testing.T) {
	id1, id2 := [16]byte{1}, [16]byte{2}
	if volume.Dev(id1, "x") == volume.Dev(id2, "x") {
		t.Error("two identities, one device")
	}
	if volume.Dev(id1, "x") != volume.Dev(id1, "y") {
		t.Error("the name changed the device of an identified volume")
	}
	if volume.Dev([16]byte{}, "x") == volume.Dev([16]byte{}, "y") {
		t.Error("unidentified volumes of two names share a device")
	}
}
