package volume_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
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

// TestDataRecoveryInBackground: what a crash left in the data store (the
// data file of a removed inode, data beyond a file's size) is removed by
// the recovery that a read-write open starts in the background, and Close
// stops that recovery if it is still running.
func TestDataRecoveryInBackground(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a")
	cfg := config(t, fmt.Sprintf("[[volume]]\nname = \"a\"\nengine = \"local\"\npath = %q\nauto_format = true\n", path))
	vols, err := volume.OpenAll(ctx, cfg, volume.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := inode.Caller{}
	a, err := vols[0].FS.Create(ctx, root, inode.RootIno, "keep", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 8192) // more than inline_bytes: a data file
	if err := vols[0].FS.Write(ctx, root, a.Ino, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := vols[0].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vols[0].Close(); err != nil {
		t.Fatal(err)
	}

	// The leftovers of a crash, written with the engine itself.
	be, err := vfsbackend.Open("local", vfsbackend.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const gone = vfsbackend.Ino(99999)
	if err := be.WriteData(ctx, gone, []byte("removed"), 0); err != nil {
		t.Fatal(err)
	}
	if err := be.WriteData(ctx, vfsbackend.Ino(a.Ino), []byte("beyond the size"), 8192); err != nil {
		t.Fatal(err)
	}
	if err := be.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	dataFile := func(ino uint64) string {
		return filepath.Join(path, "data", fmt.Sprintf("%02x", uint8(ino)), fmt.Sprintf("%016x", ino))
	}
	for _, p := range []string{dataFile(uint64(gone)), dataFile(uint64(a.Ino))} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the test's leftovers: %v", err)
		}
	}

	vols, err = volume.OpenAll(ctx, cfg, volume.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The file reads as it was committed meanwhile, and afterwards.
	if st, err := vols[0].FS.GetAttr(ctx, a.Ino); err != nil || st.Size != 8192 {
		t.Fatalf("keep: size %d, %v", st.Size, err)
	}
	if n, err := vols[0].FS.Read(ctx, root, a.Ino, make([]byte, 16), 8190); err != nil || n != 2 {
		t.Fatalf("keep: read at its end: %d bytes, %v (want 2: nothing beyond the size)", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, goneErr := os.Stat(dataFile(uint64(gone)))
		st, err := os.Stat(dataFile(uint64(a.Ino)))
		if err != nil {
			t.Fatal(err)
		}
		if os.IsNotExist(goneErr) && st.Size() == 8192 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: removed inode's data %v, data of keep %d bytes (want 8192)", goneErr, st.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := vols[0].Close(); err != nil {
		t.Fatal(err)
	}
	probs, err := volume.Check(ctx, cfg, nil, nil)
	if err != nil || len(probs) != 0 {
		t.Fatalf("check: %q, %v", probs, err)
	}

	// Close right after open stops a recovery that may still run.
	for range 5 {
		vols, err = volume.OpenAll(ctx, cfg, volume.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := vols[0].Close(); err != nil {
			t.Fatal(err)
		}
	}
}
