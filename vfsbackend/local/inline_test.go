package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// readAllT reads ino's whole object (up to 1 MiB).
func readAllT(t *testing.T, b *Backend, ino vfsbackend.Ino) []byte {
	t.Helper()
	p := make([]byte, 1<<20)
	n, err := b.ReadData(context.Background(), ino, p, 0)
	if err != nil {
		t.Fatalf("ReadData(%d): %v", ino, err)
	}
	return p[:n]
}

// listT returns ListData as a map, failing on an inode listed twice.
func listT(t *testing.T, b *Backend) map[vfsbackend.Ino]int64 {
	t.Helper()
	m := map[vfsbackend.Ino]int64{}
	if err := b.ListData(context.Background(), func(ino vfsbackend.Ino, size int64) bool {
		if _, dup := m[ino]; dup {
			t.Errorf("ListData lists %d twice", ino)
		}
		m[ino] = size
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestInlineData checks where small objects live: in the WAL and the
// index, without a data file, until they grow past inlineMax.
func TestInlineData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := openT(t, dir, tuning{inlineMax: 100})
	if err := b.WriteData(ctx, 7, []byte("small"), 10); err != nil {
		t.Fatal(err)
	}
	if err := b.TruncateData(ctx, 8, 50); err != nil { // a new object by truncate
		t.Fatal(err)
	}
	if err := b.SyncData(ctx, 7); err != nil {
		t.Fatal(err)
	}
	want7 := append(make([]byte, 10), "small"...)
	if got := readAllT(t, b, 7); !bytes.Equal(got, want7) {
		t.Fatalf("inline read %q", got)
	}
	if exists(b.data.path(7)) || exists(b.data.path(8)) {
		t.Fatal("a small object has a data file")
	}
	if _, _, err := b.DataFile(ctx, 7); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("DataFile of an inline object: %v", err)
	}
	if m := listT(t, b); m[7] != 15 || m[8] != 50 || len(m) != 2 {
		t.Fatalf("ListData %v", m)
	}
	// From the WAL, then from the index.
	closeT(t, b)
	b = openT(t, dir, tuning{inlineMax: 100})
	if got := readAllT(t, b, 7); !bytes.Equal(got, want7) {
		t.Fatalf("inline read after reopen %q", got)
	}
	if err := b.doCheckpoint(); err != nil {
		t.Fatal(err)
	}
	closeT(t, b)
	b = openT(t, dir, tuning{inlineMax: 100})
	if got := readAllT(t, b, 7); !bytes.Equal(got, want7) {
		t.Fatalf("inline read after a checkpoint %q", got)
	}
	if got := readAllT(t, b, 8); !bytes.Equal(got, make([]byte, 50)) {
		t.Fatalf("truncated inline object %q", got)
	}

	// Growing past inlineMax moves the object to a file, for good.
	big := bytes.Repeat([]byte("B"), 200)
	if err := b.WriteData(ctx, 7, big, 20); err != nil {
		t.Fatal(err)
	}
	want7 = append(append(make([]byte, 10), "small"...), make([]byte, 5)...)
	want7 = append(want7, big...)
	if got := readAllT(t, b, 7); !bytes.Equal(got, want7) || !exists(b.data.path(7)) {
		t.Fatalf("after the move: %d bytes, file %v", len(got), exists(b.data.path(7)))
	}
	if err := b.TruncateData(ctx, 7, 3); err != nil {
		t.Fatal(err)
	}
	if got := readAllT(t, b, 7); !bytes.Equal(got, want7[:3]) || !exists(b.data.path(7)) {
		t.Fatal("a moved object went back inline")
	}
	if err := b.TruncateData(ctx, 8, 1000); err != nil { // moved by truncate
		t.Fatal(err)
	}
	if got := readAllT(t, b, 8); !bytes.Equal(got, make([]byte, 1000)) || !exists(b.data.path(8)) {
		t.Fatal("move by truncate")
	}
	if m := listT(t, b); m[7] != 3 || m[8] != 1000 || len(m) != 2 {
		t.Fatalf("ListData %v", m)
	}
	closeT(t, b)
	b = openT(t, dir, tuning{inlineMax: 100})
	defer closeT(t, b)
	if got := readAllT(t, b, 7); !bytes.Equal(got, want7[:3]) {
		t.Fatalf("after reopen %q", got)
	}
}

// TestInlineLeftoverFile is the state a crash in the middle of a move
// leaves: the inline object and a data file. The inline object is the
// object; the file is ignored, then overwritten or removed.
func TestInlineLeftoverFile(t *testing.T) {
	ctx := context.Background()
	for _, then := range []string{"move", "delete"} {
		t.Run(then, func(t *testing.T) {
			b := openT(t, t.TempDir(), tuning{inlineMax: 100})
			defer closeT(t, b)
			if err := b.WriteData(ctx, 9, []byte("abc"), 0); err != nil {
				t.Fatal(err)
			}
			if err := b.data.mkdirs(9); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(b.data.path(9), bytes.Repeat([]byte("junk"), 100), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := readAllT(t, b, 9); string(got) != "abc" {
				t.Fatalf("read with a leftover file %q", got)
			}
			if m := listT(t, b); m[9] != 3 || len(m) != 1 {
				t.Fatalf("ListData %v", m)
			}
			switch then {
			case "move":
				if err := b.WriteData(ctx, 9, []byte("Z"), 150); err != nil {
					t.Fatal(err)
				}
				want := append(append([]byte("abc"), make([]byte, 147)...), 'Z')
				if got := readAllT(t, b, 9); !bytes.Equal(got, want) {
					t.Fatalf("after the move %q", got)
				}
			case "delete":
				if err := b.DeleteData(ctx, 9); err != nil {
					t.Fatal(err)
				}
				if got := readAllT(t, b, 9); len(got) != 0 || exists(b.data.path(9)) {
					t.Fatalf("after DeleteData: %q, file %v", got, exists(b.data.path(9)))
				}
				if m := listT(t, b); len(m) != 0 {
					t.Fatalf("ListData %v", m)
				}
			}
		})
	}
}

// TestInlineOption checks Options.InlineBytes: zero turns inlining off (as
// inline_bytes = 0 does), a size sets the limit, negative or too large is
// refused.
func TestInlineOption(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		inline   int
		wantFile bool // does a 100-byte object get a data file?
	}{{0, true}, {50, true}, {200, false}, {vfsbackend.DefaultInlineBytes, false}} {
		b, err := Open(vfsbackend.Options{Path: t.TempDir(), Format: vfsbackend.FormatIfNew, InlineBytes: tc.inline})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WriteData(ctx, 3, make([]byte, 100), 0); err != nil {
			t.Fatal(err)
		}
		if got := exists(b.data.path(3)); got != tc.wantFile {
			t.Errorf("InlineBytes %d: data file %v, want %v", tc.inline, got, tc.wantFile)
		}
		closeT(t, b)
	}
	for _, bad := range []int{-1, vfsbackend.MaxInlineBytes + 1} {
		if _, err := Open(vfsbackend.Options{Path: t.TempDir(), Format: vfsbackend.FormatIfNew, InlineBytes: bad}); err == nil {
			t.Errorf("InlineBytes %d accepted", bad)
		}
	}
}
