package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/local"
)

// TestCheckCaseFoldIndex: proxyfsd -check reports an index key of
// lookup_ci that is missing, -repair rebuilds the index, and the next
// read-write open of a volume without the index (made by an earlier
// version) builds it.
func TestCheckCaseFoldIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	vol := filepath.Join(dir, "a")
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[log]\nlevel = \"error\"\n[[volume]]\nname = \"a\"\npath = \""+vol+"\"\n"), 0o644)
	if rc, out, errOut := runArgs("-format", "-config", cfg); rc != 0 {
		t.Fatalf("-format: exit %d %q %q", rc, out, errOut)
	}
	// change opens the volume, runs fn on it and its engine, and closes it.
	change := func(fn func(fs *inode.FS, be vfsbackend.Backend)) {
		t.Helper()
		be, err := local.Open(vfsbackend.Options{Path: vol, InlineBytes: vfsbackend.DefaultInlineBytes})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := inode.Open(ctx, be, inode.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fn(fs, be)
		if err := be.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// deleteKeys removes every key with a prefix, behind the FS's back.
	deleteKeys := func(be vfsbackend.Backend, pfx ...[]byte) {
		t.Helper()
		var b vfsbackend.Batch
		for _, p := range pfx {
			be.Scan(ctx, p, nil, func(k, _ []byte) bool { b.Delete(bytes.Clone(k)); return true })
		}
		if err := be.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	change(func(fs *inode.FS, be vfsbackend.Backend) {
		for _, n := range []string{"One", "Two"} {
			if _, err := fs.Create(ctx, inode.Caller{}, inode.RootIno, n, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		deleteKeys(be, append([]byte{'f', 0, 0, 0, 0, 0, 0, 0, 1}, "ONE\x00"...))
	})
	rc, out, errOut := runArgs("-check", "-config", cfg)
	if rc != 1 || !strings.Contains(out, `entry 1/"One": no case-fold index key`) {
		t.Fatalf("-check of a broken index: exit %d %q %q", rc, out, errOut)
	}
	// -repair rebuilds it.
	if rc, out, errOut := runArgs("-repair", "-config", cfg); rc != 0 {
		t.Fatalf("-repair of a broken index: exit %d %q %q", rc, out, errOut)
	}
	if rc, out, errOut := runArgs("-check", "-config", cfg); rc != 0 {
		t.Fatalf("-check after -repair: exit %d %q %q", rc, out, errOut)
	}
	// An old volume: no index at all. -check is silent about it, and
	// the next read-write open builds it.
	change(func(_ *inode.FS, be vfsbackend.Backend) { deleteKeys(be, []byte{'f'}, []byte("sci_index")) })
	if rc, out, errOut := runArgs("-check", "-config", cfg); rc != 0 {
		t.Fatalf("-check of a volume without the index: exit %d %q %q", rc, out, errOut)
	}
	change(func(fs *inode.FS, _ vfsbackend.Backend) {
		if name, _, err := fs.LookupCI(ctx, inode.Caller{}, inode.RootIno, "one"); err != nil || name != "One" {
			t.Fatalf("LookupCI after the upgrade: %q %v", name, err)
		}
	})
	if rc, out, errOut := runArgs("-check", "-config", cfg); rc != 0 {
		t.Fatalf("-check after the upgrade: exit %d %q %q", rc, out, errOut)
	}
}
