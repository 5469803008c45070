package etcdswift_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
	"github.com/proxyfs/proxyfs/vfsbackend/local"
)

// The same file system workload on the local engine (on this machine's
// disk) and on etcdswift (etcd and Swift on loopback), through package
// inode as the daemon uses them:
//
//	go test ./vfsbackend/etcdswift -run - -bench FS -benchtime 200x

func benchFS(b *testing.B, engine string) (*inode.FS, vfsbackend.Backend) {
	var be vfsbackend.Backend
	var err error
	switch engine {
	case "local":
		be, err = local.Open(vfsbackend.Options{Path: b.TempDir(), Format: vfsbackend.FormatIfNew, InlineBytes: vfsbackend.DefaultInlineBytes})
	case "etcdswift":
		be, err = etcdswift.Open(vfsbackend.Options{Remote: servers.Remote(fmt.Sprint(b.Name(), benchRun.Add(1)), 0), Format: vfsbackend.FormatIfNew})
	}
	if err != nil {
		b.Fatal(err)
	}
	fs, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return fs, be
}

var root = inode.Caller{}

// benchRun makes each run of a benchmark (b.N grows) use a volume of its own.
var benchRun atomic.Int64

func BenchmarkFS(b *testing.B) {
	for _, engine := range []string{"local", "etcdswift"} {
		b.Run("Create/"+engine, func(b *testing.B) {
			fs, _ := benchFS(b, engine)
			b.ResetTimer()
			for i := range b.N {
				if _, err := fs.Create(ctx, root, inode.RootIno, fmt.Sprintf("f%d", i), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		})
		// With flush: durable against power loss on return, on both.
		b.Run("CreateFlush/"+engine, func(b *testing.B) {
			fs, _ := benchFS(b, engine)
			b.ResetTimer()
			for i := range b.N {
				a, err := fs.Create(ctx, root, inode.RootIno, fmt.Sprintf("f%d", i), 0o644)
				if err != nil {
					b.Fatal(err)
				}
				if err := fs.Flush(ctx, a.Ino); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Write1MiBFlush/"+engine, func(b *testing.B) {
			fs, _ := benchFS(b, engine)
			a, err := fs.Create(ctx, root, inode.RootIno, "big", 0o644)
			if err != nil {
				b.Fatal(err)
			}
			p := randBytes(1<<20, 1)
			b.SetBytes(1 << 20)
			b.ResetTimer()
			for i := range b.N {
				if err := fs.Write(ctx, root, a.Ino, p, uint64(i%64)<<20); err != nil {
					b.Fatal(err)
				}
				if err := fs.Flush(ctx, a.Ino); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Write1MiB/"+engine, func(b *testing.B) {
			fs, _ := benchFS(b, engine)
			a, err := fs.Create(ctx, root, inode.RootIno, "big", 0o644)
			if err != nil {
				b.Fatal(err)
			}
			p := randBytes(1<<20, 1)
			b.SetBytes(1 << 20)
			b.ResetTimer()
			for i := range b.N {
				if err := fs.Write(ctx, root, a.Ino, p, uint64(i%64)<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := fs.Flush(ctx, a.Ino); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("Read1MiB/"+engine, func(b *testing.B) {
			fs, be := benchFS(b, engine)
			a, err := fs.Create(ctx, root, inode.RootIno, "big", 0o644)
			if err != nil {
				b.Fatal(err)
			}
			p := randBytes(1<<20, 2)
			for i := range 64 {
				if err := fs.Write(ctx, root, a.Ino, p, uint64(i)<<20); err != nil {
					b.Fatal(err)
				}
			}
			if es, ok := be.(*etcdswift.Backend); ok {
				es.DropCacheForBench() // read from Swift, not from memory
			}
			b.SetBytes(1 << 20)
			b.ResetTimer()
			for i := range b.N {
				if _, err := fs.Read(ctx, root, a.Ino, p, uint64(i%64)<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
