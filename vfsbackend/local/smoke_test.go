package local

import (
	"bytes"
	"context"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(vfsbackend.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	var bt vfsbackend.Batch
	bt.Put([]byte("a"), []byte("1"))
	bt.Put([]byte("b"), []byte("2"))
	bt.Delete([]byte("a"))
	if err := b.Commit(ctx, &bt); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteData(ctx, 7, []byte("hello"), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(vfsbackend.Options{Path: dir}); err == nil {
		t.Fatal("second open succeeded")
	} else {
		t.Log(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(vfsbackend.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(ctx, []byte("a")); err == nil {
		t.Fatal("a present")
	}
	v, err := b.Get(ctx, []byte("b"))
	if err != nil || string(v) != "2" {
		t.Fatal(v, err)
	}
	p := make([]byte, 20)
	n, err := b.ReadData(ctx, 7, p, 0)
	if err != nil || n != 15 || !bytes.Equal(p[:n], append(make([]byte, 10), "hello"...)) {
		t.Fatal(n, err, p)
	}
}
