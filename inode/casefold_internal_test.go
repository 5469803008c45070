package inode

import (
	"context"
	"fmt"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// The ASCII fast path folds as the general one; folding is idempotent;
// every rune of a simple-fold orbit folds to the same rune.
func TestFoldName(t *testing.T) {
	slow := func(s string) string {
		b := []byte{}
		for _, r := range s {
			b = utf8.AppendRune(b, foldRune(r))
		}
		return string(b)
	}
	for c := 1; c < utf8.RuneSelf; c++ {
		s := fmt.Sprintf("x%cY", c)
		if foldName(s) != slow(s) {
			t.Fatalf("fold %q: fast %q, slow %q", s, foldName(s), slow(s))
		}
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r < 0xE000 {
			continue
		}
		f := foldRune(r)
		if foldRune(f) != f {
			t.Fatalf("fold of %U is %U, whose fold is %U", r, f, foldRune(f))
		}
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			if foldRune(o) != f {
				t.Fatalf("%U and %U fold to %U and %U", r, o, f, foldRune(o))
			}
		}
		if f == 0 && r != 0 {
			t.Fatalf("%U folds to NUL", r)
		}
	}
	for in, want := range map[string]string{"abc": "ABC", "ÉlaN": "ÉLAN", "ß": "ß", "ẞ": "ß", "ſ": "S", "\u212A": "K", "σς": "ΣΣ"} {
		if got := foldName(in); got != want {
			t.Errorf("foldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// The index is built in chunks: with a chunk of 3 keys, a volume of many
// entries, and stale keys, comes out right.
func TestBuildCIChunks(t *testing.T) {
	old := ciBatchOps
	ciBatchOps = 3
	defer func() { ciBatchOps = old }()
	ctx := context.Background()
	be := mem.New(vfsbackend.Options{})
	fs, err := Open(ctx, be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := fs.Mkdir(ctx, Caller{}, RootIno, "d", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := fs.Create(ctx, Caller{}, d.Ino, fmt.Sprintf("F%02d", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b vfsbackend.Batch
	for i := range 7 {
		b.Put(foldKey(d.Ino, fmt.Sprintf("stale%d", i)), encodeUint64(99))
	}
	if err := be.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if probs, _ := fs.Check(ctx); len(probs) != 7 {
		t.Fatalf("check with 7 stale keys: %q", probs)
	}
	if err := fs.RebuildCaseFoldIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if probs, err := fs.Check(ctx); len(probs) != 0 || err != nil {
		t.Fatalf("check after the rebuild: %q %v", probs, err)
	}
	n := 0
	be.Scan(ctx, []byte{pfxFold}, nil, func(_, _ []byte) bool { n++; return true })
	if n != 21 {
		t.Fatalf("%d index keys, want 21", n)
	}
	if name, a, err := fs.LookupCI(ctx, Caller{}, d.Ino, "f13"); err != nil || name != "F13" || a.Ino == 0 {
		t.Fatalf("LookupCI f13: %q %v", name, err)
	}
}
