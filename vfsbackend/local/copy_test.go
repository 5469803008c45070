package local

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// CopyData copies between data files in the kernel, and declines inline
// objects (the caller then copies through a buffer).
func TestCopyDataFiles(t *testing.T) {
	ctx := context.Background()
	b, err := Open(vfsbackend.Options{Path: t.TempDir(), Format: vfsbackend.FormatIfNew, InlineBytes: vfsbackend.DefaultInlineBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	data := bytes.Repeat([]byte("abc"), 100000)
	if err := b.WriteData(ctx, 10, data, 0); err != nil {
		t.Fatal(err)
	}
	n, err := b.CopyData(ctx, 10, 3, 11, 7, 200000)
	if err != nil || n != 200000 {
		t.Fatalf("CopyData = %d, %v", n, err)
	}
	got := make([]byte, 200007)
	if m, err := b.ReadData(ctx, 11, got, 0); err != nil || m != len(got) ||
		!bytes.Equal(got[:7], make([]byte, 7)) || !bytes.Equal(got[7:], data[3:200003]) {
		t.Fatalf("copied data wrong (%d bytes, %v)", m, err)
	}
	// Past src's end: short.
	if n, err := b.CopyData(ctx, 10, 299990, 11, 0, 100); err != nil || n != 10 {
		t.Fatalf("short CopyData = %d, %v", n, err)
	}
	if err := b.WriteData(ctx, 12, []byte("tiny"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CopyData(ctx, 12, 0, 11, 0, 4); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CopyData from inline: %v", err)
	}
	if _, err := b.CopyData(ctx, 10, 0, 12, 0, 4); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CopyData to inline: %v", err)
	}
}
