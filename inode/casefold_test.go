package inode_test

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// lookupCI fails the test unless LookupCI of name in dir finds wantName
// (wantIno, if not 0), or fails with want.
func lookupCI(t *testing.T, fs *inode.FS, dir inode.Ino, name, wantName string, wantIno inode.Ino, want syscall.Errno) {
	t.Helper()
	got, a, err := fs.LookupCI(ctx, root, dir, name)
	wantErr(t, "lookup_ci "+name, err, want)
	if want != 0 {
		return
	}
	if got != wantName || (wantIno != 0 && a.Ino != wantIno) {
		t.Fatalf("lookup_ci %q: %q ino %d, want %q ino %d", name, got, a.Ino, wantName, wantIno)
	}
	if a.Mode == 0 || a.Nlink == 0 {
		t.Fatalf("lookup_ci %q: empty attributes %+v", name, a)
	}
}

func TestLookupCIFolding(t *testing.T) {
	fs, _ := inodetest.New(t)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	names := []string{"Readme.TXT", "Élan", "straße", "Σίσυφος", "Kelvin", "ſtop", "Москва", "İstanbul", "file9"}
	inos := map[string]inode.Ino{}
	for _, n := range names {
		inos[n] = mustCreate(t, fs, d.Ino, n).Ino
	}
	for _, c := range []struct{ ask, want string }{
		{"Readme.TXT", "Readme.TXT"},
		{"readme.txt", "Readme.TXT"},
		{"README.TXT", "Readme.TXT"},
		{"élan", "Élan"},
		{"ÉLAN", "Élan"},
		{"STRAẞE", "straße"}, // ß and capital ẞ are one simple-fold class
		{"ΣΊΣΥΦΟΣ", "Σίσυφος"},
		{"σίσυφοσ", "Σίσυφος"}, // final and medial sigma fold alike
		{"kelvin", "Kelvin"},
		{"\u212Aelvin", "Kelvin"}, // KELVIN SIGN
		{"STOP", "ſtop"},          // long s
		{"москва", "Москва"},
		{"FILE9", "file9"},
	} {
		lookupCI(t, fs, d.Ino, c.ask, c.want, inos[c.want], 0)
	}
	// Not folded: full folding (ß -> ss), normalization, Turkish i, and
	// names of another length.
	for _, n := range []string{"strasse", "STRASSE", "E\u0301lan", "istanbul", "ISTANBUL", "readme.txt ", "readme.tx", "file"} {
		lookupCI(t, fs, d.Ino, n, "", 0, syscall.ENOENT)
	}
	// "." and "..", and errors as lookup's.
	lookupCI(t, fs, d.Ino, ".", ".", d.Ino, 0)
	lookupCI(t, fs, d.Ino, "..", "..", inode.RootIno, 0)
	lookupCI(t, fs, inos["file9"], "x", "", 0, syscall.ENOTDIR)
	lookupCI(t, fs, 9999, "x", "", 0, syscall.ENOENT)
	lookupCI(t, fs, d.Ino, "a/b", "", 0, syscall.EINVAL)
	lookupCI(t, fs, d.Ino, "", "", 0, syscall.EINVAL)
	lookupCI(t, fs, d.Ino, strings.Repeat("a", 256), "", 0, syscall.ENAMETOOLONG)
	lookupCI(t, fs, d.Ino, "\xff", "", 0, syscall.EINVAL)
	// Another directory's names are not found.
	lookupCI(t, fs, inode.RootIno, "readme.txt", "", 0, syscall.ENOENT)
	lookupCI(t, fs, inode.RootIno, "D", "d", d.Ino, 0)
}

// Several names that fold alike: the exact one if it exists, else the
// first in byte order; unlinking one leaves the others found.
func TestLookupCICollisions(t *testing.T) {
	fs, _ := inodetest.New(t)
	lower := mustCreate(t, fs, inode.RootIno, "abc").Ino
	lookupCI(t, fs, inode.RootIno, "ABC", "abc", lower, 0)
	upper := mustCreate(t, fs, inode.RootIno, "ABC").Ino
	mixed := mustCreate(t, fs, inode.RootIno, "aBc").Ino
	lookupCI(t, fs, inode.RootIno, "abc", "abc", lower, 0)
	lookupCI(t, fs, inode.RootIno, "ABC", "ABC", upper, 0)
	lookupCI(t, fs, inode.RootIno, "aBc", "aBc", mixed, 0)
	// No exact match: the smallest name in byte order ("ABC" < "aBc" < "abc").
	lookupCI(t, fs, inode.RootIno, "Abc", "ABC", upper, 0)
	lookupCI(t, fs, inode.RootIno, "abC", "ABC", upper, 0)
	wantErr(t, "unlink ABC", fs.Unlink(ctx, root, inode.RootIno, "ABC"), 0)
	lookupCI(t, fs, inode.RootIno, "Abc", "aBc", mixed, 0)
	lookupCI(t, fs, inode.RootIno, "ABC", "aBc", mixed, 0)
	wantErr(t, "unlink aBc", fs.Unlink(ctx, root, inode.RootIno, "aBc"), 0)
	lookupCI(t, fs, inode.RootIno, "ABC", "abc", lower, 0)
	wantErr(t, "unlink abc", fs.Unlink(ctx, root, inode.RootIno, "abc"), 0)
	lookupCI(t, fs, inode.RootIno, "ABC", "", 0, syscall.ENOENT)
	// Prefixes of a folded name are other names: "ab" does not find "abc".
	mustCreate(t, fs, inode.RootIno, "abcd")
	lookupCI(t, fs, inode.RootIno, "ABC", "", 0, syscall.ENOENT)
	lookupCI(t, fs, inode.RootIno, "ABCD", "abcd", 0, 0)
}

// Every entry operation keeps the index: rename (changing only the case,
// across directories, replacing a file), link, symlink, mkdir, rmdir.
// inodetest.New checks the index against the entries at the end.
func TestLookupCIEveryEntryOp(t *testing.T) {
	fs, _ := inodetest.New(t)
	a := mustMkdir(t, fs, inode.RootIno, "a")
	b := mustMkdir(t, fs, inode.RootIno, "b")
	f := mustCreate(t, fs, a.Ino, "File").Ino

	// Rename changing only the case.
	wantErr(t, "rename", fs.Rename(ctx, root, a.Ino, "File", a.Ino, "FILE"), 0)
	lookupCI(t, fs, a.Ino, "file", "FILE", f, 0)
	wantErr(t, "lookup old", func() error { _, err := fs.Lookup(ctx, root, a.Ino, "File"); return err }(), syscall.ENOENT)
	inodetest.MustCheck(t, fs)
	// Rename to another directory.
	wantErr(t, "rename", fs.Rename(ctx, root, a.Ino, "FILE", b.Ino, "moved"), 0)
	lookupCI(t, fs, a.Ino, "file", "", 0, syscall.ENOENT)
	lookupCI(t, fs, b.Ino, "MOVED", "moved", f, 0)
	// Rename replacing an existing file whose name folds alike.
	g := mustCreate(t, fs, b.Ino, "Other").Ino
	wantErr(t, "rename over", fs.Rename(ctx, root, b.Ino, "Other", b.Ino, "moved"), 0)
	lookupCI(t, fs, b.Ino, "MOVED", "moved", g, 0)
	lookupCI(t, fs, b.Ino, "other", "", 0, syscall.ENOENT)
	inodetest.MustCheck(t, fs)
	// Link and unlink.
	wantErr(t, "link", fs.Link(ctx, root, a.Ino, "HardLink", g), 0)
	lookupCI(t, fs, a.Ino, "hardlink", "HardLink", g, 0)
	wantErr(t, "unlink", fs.Unlink(ctx, root, b.Ino, "moved"), 0)
	lookupCI(t, fs, b.Ino, "moved", "", 0, syscall.ENOENT)
	lookupCI(t, fs, a.Ino, "HARDLINK", "HardLink", g, 0)
	// Symlink.
	s, err := fs.Symlink(ctx, root, a.Ino, "Link", "target")
	wantErr(t, "symlink", err, 0)
	lookupCI(t, fs, a.Ino, "LINK", "Link", s.Ino, 0)
	// Mkdir, rename of a directory, rmdir.
	sub := mustMkdir(t, fs, a.Ino, "Sub")
	lookupCI(t, fs, a.Ino, "sub", "Sub", sub.Ino, 0)
	wantErr(t, "rename dir", fs.Rename(ctx, root, a.Ino, "Sub", b.Ino, "SUB2"), 0)
	lookupCI(t, fs, b.Ino, "sub2", "SUB2", sub.Ino, 0)
	lookupCI(t, fs, a.Ino, "sub", "", 0, syscall.ENOENT)
	wantErr(t, "rmdir", fs.Rmdir(ctx, root, b.Ino, "SUB2"), 0)
	lookupCI(t, fs, b.Ino, "sub2", "", 0, syscall.ENOENT)
}

// deleteKeys removes every key with one of the prefixes behind the FS's
// back.
func deleteKeys(t *testing.T, be vfsbackend.Backend, prefixes ...[]byte) int {
	t.Helper()
	var batch vfsbackend.Batch
	for _, p := range prefixes {
		if err := be.Scan(ctx, p, nil, func(k, _ []byte) bool {
			batch.Delete(bytes.Clone(k))
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	n := batch.Len()
	if err := be.Commit(ctx, &batch); err != nil {
		t.Fatal(err)
	}
	return n
}

// A volume without the index (made by an earlier version) gets it at its
// first read-write open; read-only, it is served by a directory scan and
// Check says nothing about the index.
func TestLookupCIUpgrade(t *testing.T) {
	be := mem.New(vfsbackend.Options{})
	fs, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := mustMkdir(t, fs, inode.RootIno, "Dir")
	var inos []inode.Ino
	for i := range 50 {
		inos = append(inos, mustCreate(t, fs, d.Ino, fmt.Sprintf("Name%02d", i)).Ino)
	}
	// Make it an old volume: no index, no marker.
	if n := deleteKeys(t, be, []byte{'f'}, []byte("sci_index")); n != 52 {
		t.Fatalf("deleted %d index keys, want 52 (51 entries and the marker)", n)
	}
	// Read-only: a scan finds the names; nothing is written.
	ro, err := inode.Open(ctx, be, inode.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	lookupCI(t, ro, d.Ino, "NAME07", "Name07", inos[7], 0)
	lookupCI(t, ro, d.Ino, "name99", "", 0, syscall.ENOENT)
	inodetest.MustCheck(t, ro)
	if _, err := be.Get(ctx, []byte("sci_index")); err == nil {
		t.Fatal("a read-only open wrote the index marker")
	}
	// A stale index key from an interrupted build is removed by the build.
	stale := append([]byte{'f', 0, 0, 0, 0, 0, 0, 0, 1}, "GONE\x00gone"...)
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: stale, Value: make([]byte, 8)}}}); err != nil {
		t.Fatal(err)
	}
	rw, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inodetest.MustCheck(t, rw)
	lookupCI(t, rw, d.Ino, "NAME07", "Name07", inos[7], 0)
	lookupCI(t, rw, inode.RootIno, "dir", "Dir", d.Ino, 0)
	lookupCI(t, rw, inode.RootIno, "gone", "", 0, syscall.ENOENT)
	if v, err := be.Get(ctx, []byte("sci_index")); err != nil || len(v) == 0 {
		t.Fatalf("index marker after upgrade: %q %v", v, err)
	}
	n := 0
	be.Scan(ctx, []byte{'f'}, nil, func(_, _ []byte) bool { n++; return true })
	if n != 51 {
		t.Fatalf("%d index keys after upgrade, want 51", n)
	}
	// An index built with another Unicode version is rebuilt.
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: []byte("sci_index"), Value: []byte("1.0.0")}}}); err != nil {
		t.Fatal(err)
	}
	deleteKeys(t, be, []byte{'f', 0, 0, 0, 0, 0, 0, 0, byte(d.Ino)})
	rw2, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inodetest.MustCheck(t, rw2)
	lookupCI(t, rw2, d.Ino, "name49", "Name49", inos[49], 0)
}

// Check finds an index key missing, one too many, and one with the wrong
// inode.
func TestCheckFindsBrokenCIIndex(t *testing.T) {
	fs, be := inodetest.New(t)
	a := mustCreate(t, fs, inode.RootIno, "Alpha").Ino
	mustCreate(t, fs, inode.RootIno, "beta")
	inodetest.MustCheck(t, fs)
	var key, val []byte
	be.Scan(ctx, []byte{'f'}, nil, func(k, v []byte) bool {
		if bytes.HasSuffix(k, []byte("\x00Alpha")) {
			key, val = bytes.Clone(k), bytes.Clone(v)
		}
		return true
	})
	if key == nil {
		t.Fatal("no index key for Alpha")
	}
	commit := func(ops ...vfsbackend.Op) {
		t.Helper()
		if err := be.Commit(ctx, &vfsbackend.Batch{Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	wantProbs := func(what, contains string) {
		t.Helper()
		probs, err := fs.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) != 1 || !strings.Contains(probs[0], contains) {
			t.Fatalf("%s: problems %q, want one containing %q", what, probs, contains)
		}
	}
	commit(vfsbackend.Op{Key: key, Delete: true})
	wantProbs("missing key", "no case-fold index key")
	commit(vfsbackend.Op{Key: key, Value: []byte{0, 0, 0, 0, 0, 0, 0, 99}})
	wantProbs("wrong inode", "inode 99")
	lookupCI(t, fs, inode.RootIno, "alpha", "", 0, syscall.EIO)
	commit(vfsbackend.Op{Key: key, Value: []byte{1, 2, 3}})
	wantProbs("short value", "inode 0, the entry has")
	lookupCI(t, fs, inode.RootIno, "alpha", "", 0, syscall.EIO)
	commit(vfsbackend.Op{Key: key, Value: val})
	inodetest.MustCheck(t, fs)
	extra := append(bytes.Clone(key[:9]), "ALPHB\x00alphb"...)
	commit(vfsbackend.Op{Key: extra, Value: val})
	wantProbs("extra key", "no such entry")
	commit(vfsbackend.Op{Key: extra, Delete: true})
	lookupCI(t, fs, inode.RootIno, "ALPHA", "Alpha", a, 0)
}

// Many names folding alike (all 128 case variants of a 7-letter name,
// more than LookupCI scans before it looks the exact name up by its
// entry key): the exact name is still preferred, else the first.
func TestLookupCIManyCollisions(t *testing.T) {
	fs, _ := inodetest.New(t)
	variant := func(bits int) string {
		b := []byte("abcdefg")
		for i := range b {
			if bits&(1<<i) != 0 {
				b[i] -= 'a' - 'A'
			}
		}
		return string(b)
	}
	inos := map[string]inode.Ino{}
	for bits := range 128 {
		inos[variant(bits)] = mustCreate(t, fs, inode.RootIno, variant(bits)).Ino
	}
	for _, bits := range []int{0, 1, 64, 127, 85} {
		n := variant(bits)
		lookupCI(t, fs, inode.RootIno, n, n, inos[n], 0)
	}
	// "abcdefg" sorts last of all; without it, the first ("ABCDEFG") is found.
	wantErr(t, "unlink", fs.Unlink(ctx, root, inode.RootIno, "abcdefg"), 0)
	lookupCI(t, fs, inode.RootIno, "abcdefg", "ABCDEFG", inos["ABCDEFG"], 0)
	lookupCI(t, fs, inode.RootIno, "abcdefgh", "", 0, syscall.ENOENT)
}
