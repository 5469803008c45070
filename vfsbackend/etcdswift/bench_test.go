package etcdswift_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

// The raw rates of the servers, from the engine's own clients, and the
// engine's rates on them. go test -run - -bench . -benchtime 100x

// benchEngine opens a fresh volume with $PROXYFS_BENCH_CHUNK byte chunks
// (default: the engine's).
func benchEngine(b *testing.B) *etcdswift.Backend {
	chunk, _ := strconv.Atoi(os.Getenv("PROXYFS_BENCH_CHUNK"))
	be, err := etcdswift.Open(vfsbackend.Options{Remote: servers.Remote(fmt.Sprint(b.Name(), chunk, benchRun.Add(1)), chunk), Format: vfsbackend.FormatIfNew})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

func BenchmarkRawEtcdTxn(b *testing.B) {
	be := benchEngine(b)
	b.ResetTimer()
	for i := range b.N {
		if err := be.RawEtcdPutForBench(ctx, fmt.Sprintf("raw%d", i), "v"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRawSwiftPut(b *testing.B, size int) {
	be := benchEngine(b)
	data := bytes.Repeat([]byte("x"), size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		if err := be.RawSwiftPutForBench(ctx, fmt.Sprintf("raw/%d", i), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawSwiftPut4K(b *testing.B) { benchRawSwiftPut(b, 4<<10) }
func BenchmarkRawSwiftPut1M(b *testing.B) { benchRawSwiftPut(b, 1<<20) }

func BenchmarkRawSwiftGet1M(b *testing.B) {
	be := benchEngine(b)
	data := bytes.Repeat([]byte("x"), 1<<20)
	if err := be.RawSwiftPutForBench(ctx, "raw/get", data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for range b.N {
		if err := be.RawSwiftGetForBench(ctx, "raw/get"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCommit(b *testing.B) {
	be := benchEngine(b)
	b.ResetTimer()
	for i := range b.N {
		var batch vfsbackend.Batch
		batch.Put(fmt.Appendf(nil, "i%d", i), []byte("record"))
		batch.Put(fmt.Appendf(nil, "e%d", i), []byte("entry"))
		if err := be.Commit(ctx, &batch); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWrite(b *testing.B, size int, sameIno bool) {
	be := benchEngine(b)
	data := bytes.Repeat([]byte("y"), size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		ino, off := vfsbackend.Ino(i+1), int64(0)
		if sameIno {
			ino, off = 1, int64(i*size)
		}
		if err := be.WriteData(ctx, ino, data, off); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite1M(b *testing.B)  { benchWrite(b, 1<<20, false) }
func BenchmarkWrite4K(b *testing.B)  { benchWrite(b, 4<<10, false) }
func BenchmarkAppend4K(b *testing.B) { benchWrite(b, 4<<10, true) }
func BenchmarkAppend1M(b *testing.B) { benchWrite(b, 1<<20, true) }

func BenchmarkRead1M(b *testing.B) {
	be := benchEngine(b)
	data := bytes.Repeat([]byte("z"), 8<<20)
	if err := be.WriteData(ctx, 1, data, 0); err != nil {
		b.Fatal(err)
	}
	be.DropCacheForBench()
	p := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := range b.N {
		if i%8 == 0 {
			be.DropCacheForBench()
		}
		if _, err := be.ReadData(ctx, 1, p, int64(i%8)<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOverwrite4K writes 4 KiB at random aligned offsets of a 16 MiB
// file: each write rewrites the chunk it falls in.
func BenchmarkOverwrite4K(b *testing.B) {
	be := benchEngine(b)
	if err := be.WriteData(ctx, 1, bytes.Repeat([]byte("o"), 16<<20), 0); err != nil {
		b.Fatal(err)
	}
	be.DropCacheForBench()
	data := bytes.Repeat([]byte("p"), 4<<10)
	r := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(4 << 10)
	b.ResetTimer()
	for range b.N {
		if err := be.WriteData(ctx, 1, data, int64(r.IntN(4096))*4096); err != nil {
			b.Fatal(err)
		}
	}
}
