package inode

import (
	"bytes"
	"context"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// Every Check in this package's tests (and so every inodetest.MustCheck
// here) compares the bounded-memory check with the exact one.
func init() { verifyCheckFast = true }

// TestCheckFastFindsEachDamage plants one kind of damage at a time in a
// volume with every kind of record and checks that the bounded-memory
// check notices it (Check fails if it and the exact check disagree).
func TestCheckFastFindsEachDamage(t *testing.T) {
	ctx := context.Background()
	be := mem.New(vfsbackend.Options{})
	fs, err := Open(ctx, be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := Caller{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := fs.Mkdir(ctx, c, RootIno, "Dir", 0o755)
	must(err)
	sub, err := fs.Mkdir(ctx, c, d.Ino, "sub", 0o755)
	must(err)
	f, err := fs.Create(ctx, c, d.Ino, "File.TXT", 0o644)
	must(err)
	must(fs.Write(ctx, c, f.Ino, []byte("some data"), 0))
	must(fs.Link(ctx, c, sub.Ino, "hard", f.Ino))
	e, err := fs.Create(ctx, c, RootIno, "empty", 0o644)
	must(err)
	l, err := fs.Symlink(ctx, c, RootIno, "link", "Dir/File.TXT")
	must(err)
	must(fs.SetXattr(ctx, c, f.Ino, "user.a", []byte("v"), 0))
	if probs, err := fs.Check(ctx); err != nil || len(probs) != 0 {
		t.Fatalf("clean volume: %v, %v", probs, err)
	}

	get := func(k []byte) []byte {
		t.Helper()
		v, err := be.Get(ctx, k)
		must(err)
		return v
	}
	rec := func(ino Ino) *record {
		t.Helper()
		r, err := decodeRecord(ino, get(inodeKey(ino)))
		must(err)
		return r
	}
	var foldK []byte
	must(be.Scan(ctx, []byte{pfxFold}, nil, func(k, _ []byte) bool { foldK = bytes.Clone(k); return false }))
	ent := func(dir Ino, name string) entry {
		t.Helper()
		en, err := decodeEntry(get(entryKey(dir, name)))
		must(err)
		return en
	}
	fe := ent(d.Ino, "File.TXT")
	put := func(k, v []byte) vfsbackend.Op { return vfsbackend.Op{Key: k, Value: v} }
	del := func(k []byte) vfsbackend.Op { return vfsbackend.Op{Key: k, Delete: true} }
	withRec := func(ino Ino, change func(r *record)) vfsbackend.Op {
		r := rec(ino)
		change(r)
		return put(inodeKey(ino), encodeRecord(r))
	}

	for _, tc := range []struct {
		name string
		ops  []vfsbackend.Op
		data func() error // damage to data objects, undone by undoData
	}{
		{name: "cookie key missing", ops: []vfsbackend.Op{del(cookieKey(d.Ino, fe.Cookie))}},
		{name: "cookie names another", ops: []vfsbackend.Op{put(cookieKey(d.Ino, fe.Cookie), encodeCookieValue(f.Ino, fe.Type, "other"))}},
		{name: "stray cookie", ops: []vfsbackend.Op{put(cookieKey(d.Ino, 99), encodeCookieValue(f.Ino, fe.Type, "x"))}},
		{name: "file nlink", ops: []vfsbackend.Op{withRec(f.Ino, func(r *record) { r.Nlink++ })}},
		{name: "dir nlink", ops: []vfsbackend.Op{withRec(d.Ino, func(r *record) { r.Nlink = 2 })}},
		{name: "dir parent", ops: []vfsbackend.Op{withRec(sub.Ino, func(r *record) { r.Parent = RootIno })}},
		{name: "dir record missing", ops: []vfsbackend.Op{del(inodeKey(sub.Ino))}},
		{name: "file record missing", ops: []vfsbackend.Op{del(inodeKey(e.Ino))}},
		{name: "entry type", ops: []vfsbackend.Op{put(entryKey(RootIno, "empty"), encodeEntry(entry{Ino: e.Ino, Cookie: ent(RootIno, "empty").Cookie, Type: DTDir}))}},
		{name: "entry cookie out of range", ops: []vfsbackend.Op{put(entryKey(RootIno, "empty"), encodeEntry(entry{Ino: e.Ino, Cookie: 1 << 40, Type: ent(RootIno, "empty").Type}))}},
		{name: "symlink target missing", ops: []vfsbackend.Op{del(symlinkKey(l.Ino))}},
		{name: "target of a file", ops: []vfsbackend.Op{put(symlinkKey(e.Ino), []byte("x"))}},
		{name: "orphan listed but linked", ops: []vfsbackend.Op{put(inoKey(pfxOrphan, e.Ino), []byte{1})}},
		{name: "unlinked, not listed", ops: []vfsbackend.Op{del(entryKey(RootIno, "empty")), del(cookieKey(RootIno, ent(RootIno, "empty").Cookie)), withRec(e.Ino, func(r *record) { r.Nlink = 0 })}},
		{name: "fold key missing", ops: []vfsbackend.Op{del(foldK)}},
		{name: "xattr of a missing inode", ops: []vfsbackend.Op{put(xattrKey(12345, "user.x"), []byte("v"))}},
		{name: "inode count", ops: []vfsbackend.Op{put(keyInodeUsed, encodeUint64(99))}},
		{name: "file size past its data", ops: []vfsbackend.Op{withRec(f.Ino, func(r *record) { r.Size += 100 })}},
		{name: "data past the file size", ops: []vfsbackend.Op{withRec(f.Ino, func(r *record) { r.Size = 3 })}},
		{name: "data of a missing inode", data: func() error { return be.WriteData(ctx, 4242, []byte("x"), 0) }},
		{name: "empty data of a missing inode", data: func() error {
			if err := be.WriteData(ctx, 4243, []byte("x"), 0); err != nil {
				return err
			}
			return be.TruncateData(ctx, 4243, 0)
		}},
		{name: "data of a directory", data: func() error { return be.WriteData(ctx, vfsbackend.Ino(sub.Ino), []byte("x"), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Save what the damage replaces, to put it back.
			var undo []vfsbackend.Op
			for _, op := range tc.ops {
				if v, err := be.Get(ctx, op.Key); err == nil {
					undo = append(undo, put(bytes.Clone(op.Key), v))
				} else {
					undo = append(undo, del(bytes.Clone(op.Key)))
				}
			}
			if len(tc.ops) > 0 {
				must(be.Commit(ctx, &vfsbackend.Batch{Ops: tc.ops}))
			}
			if tc.data != nil {
				must(tc.data())
			}
			ok, err := fs.checkFast(ctx, logProgress(0, nil))
			must(err)
			probs, err := fs.Check(ctx) // fails if the two checks disagree
			if ok || err != nil || len(probs) == 0 {
				t.Errorf("checkFast %v, exact check %q, %v", ok, probs, err)
			}
			for i := len(undo) - 1; i >= 0; i-- {
				must(be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{undo[i]}}))
			}
			if tc.data != nil {
				for _, ino := range []vfsbackend.Ino{4242, 4243} {
					must(be.DeleteData(ctx, ino))
				}
				must(be.DeleteData(ctx, vfsbackend.Ino(sub.Ino)))
			}
			if ok, err := fs.checkFast(ctx, logProgress(0, nil)); !ok || err != nil {
				t.Fatalf("after undoing the damage: %v, %v", ok, err)
			}
		})
	}
}
