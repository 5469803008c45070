// Package backendtest is the conformance suite for vfsbackend engines. An
// engine's tests call Run with a function that opens the engine in a
// directory:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
//			b, err := myengine.Open(vfsbackend.Options{Path: dir})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		}, backendtest.Durable())
//	}
//
// Every subtest opens a fresh engine in its own empty directory and closes
// it when it ends. With Durable, the Reopen group also closes the engine and
// opens it again on the same directory, and checks that everything
// committed and written is still there.
//
// The suite checks the contract documented on vfsbackend.Backend, plus
// these behaviours that package inode relies on:
//
//   - Get returns a copy; changing it, or the key and value slices of a
//     committed batch, does not change what is stored.
//   - A zero-length WriteData changes nothing (it does not extend the
//     object), like pwrite(2).
//   - Data cut off by TruncateData never reappears: growing the object again
//     exposes zeros.
//   - Negative offsets and sizes fail with EINVAL.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// OpenFunc opens the engine under test with its files in dir (an empty
// directory the first time). It reports failures through t. For a durable
// engine it is called again on the same dir after Close, and must then
// return an engine holding everything the previous one stored.
type OpenFunc func(t *testing.T, dir string) vfsbackend.Backend

// Option changes how Run tests an engine.
type Option func(*config)

type config struct {
	durable bool
}

// Durable says that the engine keeps its state in dir across Close and
// reopen; it enables the Reopen tests.
func Durable() Option { return func(c *config) { c.durable = true } }

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, open OpenFunc, opts ...Option) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	s := &suite{open: open, cfg: c}
	t.Run("Get", s.testGet)
	t.Run("Commit", s.testCommit)
	t.Run("Scan", s.testScan)
	t.Run("Data", s.testData)
	t.Run("Truncate", s.testTruncate)
	t.Run("DeleteData", s.testDeleteData)
	t.Run("DataFile", s.testDataFile)
	t.Run("Alloc", s.testAlloc)
	t.Run("Copy", s.testCopy)
	t.Run("ListData", s.testListData)
	t.Run("Usage", s.testUsage)
	t.Run("Sync", s.testSync)
	t.Run("Close", s.testClose)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("Reopen", func(t *testing.T) {
		if !c.durable {
			t.Skip("engine is not durable")
		}
		s.testReopen(t)
	})
}

type suite struct {
	open OpenFunc
	cfg  config
}

var ctx = context.Background()

// engine is an open engine in a test's own directory.
type engine struct {
	vfsbackend.Backend
	t      *testing.T
	dir    string
	open   OpenFunc
	closed bool
}

// fresh opens the engine in a new directory and closes it at the end of
// the test.
func (s *suite) fresh(t *testing.T) *engine {
	t.Helper()
	e := &engine{t: t, dir: t.TempDir(), open: s.open}
	e.Backend = s.open(t, e.dir)
	if e.Backend == nil {
		t.Fatal("open returned a nil Backend")
	}
	t.Cleanup(func() {
		if !e.closed {
			if err := e.Backend.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return e
}

// close closes the engine, failing the test on error.
func (e *engine) close() {
	e.t.Helper()
	e.closed = true
	if err := e.Backend.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
}

// reopen closes the engine and opens it again on the same directory.
func (e *engine) reopen() {
	e.t.Helper()
	e.close()
	e.Backend = e.open(e.t, e.dir)
	if e.Backend == nil {
		e.t.Fatal("open returned a nil Backend")
	}
	e.closed = false
}

// op is shorthand for building batches.
type op = vfsbackend.Op

func put(k, v string) op { return op{Key: []byte(k), Value: []byte(v)} }
func del(k string) op    { return op{Delete: true, Key: []byte(k)} }

func (e *engine) commit(ops ...op) {
	e.t.Helper()
	if err := e.Commit(ctx, &vfsbackend.Batch{Ops: ops}); err != nil {
		e.t.Fatalf("Commit: %v", err)
	}
}

// want checks that key holds value.
func (e *engine) want(key, value string) {
	e.t.Helper()
	got, err := e.Get(ctx, []byte(key))
	if err != nil {
		e.t.Errorf("Get(%q): %v, want %q", key, err, value)
		return
	}
	if string(got) != value {
		e.t.Errorf("Get(%q) = %q, want %q", key, got, value)
	}
}

// wantMissing checks that key does not exist.
func (e *engine) wantMissing(key string) {
	e.t.Helper()
	got, err := e.Get(ctx, []byte(key))
	if !errors.Is(err, syscall.ENOENT) {
		e.t.Errorf("Get(%q) = %q, %v; want an error wrapping ENOENT", key, got, err)
	}
}

// scan returns "key=value" for each scanned entry.
func (e *engine) scan(prefix, start string, limit int) []string {
	e.t.Helper()
	var out []string
	var p, s []byte
	if prefix != "" {
		p = []byte(prefix)
	}
	if start != "" {
		s = []byte(start)
	}
	err := e.Scan(ctx, p, s, func(k, v []byte) bool {
		out = append(out, string(k)+"="+string(v))
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		e.t.Fatalf("Scan(%q, %q): %v", prefix, start, err)
	}
	return out
}

func (e *engine) write(ino vfsbackend.Ino, p []byte, off int64) {
	e.t.Helper()
	if err := e.WriteData(ctx, ino, p, off); err != nil {
		e.t.Fatalf("WriteData(%d, %d bytes at %d): %v", ino, len(p), off, err)
	}
}

func (e *engine) truncate(ino vfsbackend.Ino, size int64) {
	e.t.Helper()
	if err := e.TruncateData(ctx, ino, size); err != nil {
		e.t.Fatalf("TruncateData(%d, %d): %v", ino, size, err)
	}
}

// read reads n bytes at off and returns what ReadData returned.
func (e *engine) read(ino vfsbackend.Ino, off int64, n int) []byte {
	e.t.Helper()
	p := make([]byte, n)
	for i := range p {
		p[i] = 0xEE // must be overwritten (zeros for holes) or not returned
	}
	got, err := e.ReadData(ctx, ino, p, off)
	if err != nil {
		e.t.Fatalf("ReadData(%d, %d at %d): %v", ino, n, off, err)
	}
	if got < 0 || got > n {
		e.t.Fatalf("ReadData(%d, %d at %d) = %d bytes", ino, n, off, got)
	}
	return p[:got]
}

// wantData checks that reading len(want)+extra bytes at off returns want.
func (e *engine) wantData(ino vfsbackend.Ino, off int64, want []byte, extra int) {
	e.t.Helper()
	got := e.read(ino, off, len(want)+extra)
	if !bytes.Equal(got, want) {
		e.t.Errorf("ReadData(%d, %d at %d) = %d bytes %s, want %d bytes %s", ino, len(want)+extra, off,
			len(got), abbrev(got), len(want), abbrev(want))
	}
}

// objects returns ListData's result as a map.
func (e *engine) objects() map[vfsbackend.Ino]int64 {
	e.t.Helper()
	m := map[vfsbackend.Ino]int64{}
	err := e.ListData(ctx, func(ino vfsbackend.Ino, size int64) bool {
		if _, dup := m[ino]; dup {
			e.t.Errorf("ListData returned %d twice", ino)
		}
		m[ino] = size
		return true
	})
	if err != nil {
		e.t.Fatalf("ListData: %v", err)
	}
	return m
}

// wantSize checks the object's size as ListData reports it (-1: absent).
func (e *engine) wantSize(ino vfsbackend.Ino, size int64) {
	e.t.Helper()
	got, ok := e.objects()[ino]
	if !ok {
		got = -1
	}
	if got != size {
		e.t.Errorf("ListData size of %d = %d, want %d (-1 = no object)", ino, got, size)
	}
}

func abbrev(p []byte) string {
	if len(p) <= 32 {
		return fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("%q...%q", p[:16], p[len(p)-16:])
}

func zeros(n int) []byte { return make([]byte, n) }

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7) + byte(i>>8)
		if p[i] == 0 {
			p[i] = 1
		}
	}
	return p
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func (s *suite) testGet(t *testing.T) {
	t.Run("Missing", func(t *testing.T) {
		e := s.fresh(t)
		e.wantMissing("nope")
		e.wantMissing("")
	})
	t.Run("Present", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(put("k", "v"), put("k2", "v2"))
		e.want("k", "v")
		e.want("k2", "v2")
		e.wantMissing("k3")
		e.wantMissing("k\x00")
	})
	t.Run("ReturnsCopy", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(put("k", "value"))
		got, err := e.Get(ctx, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "XXXXX")
		e.want("k", "value")
	})
	t.Run("EmptyValue", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(op{Key: []byte("nil")}, op{Key: []byte("empty"), Value: []byte{}})
		e.want("nil", "")
		e.want("empty", "")
	})
	t.Run("BinaryKeysAndValues", func(t *testing.T) {
		e := s.fresh(t)
		k := "\x00\xff\x01key\x00"
		v := string([]byte{0, 1, 2, 0xff, 0})
		e.commit(put(k, v))
		e.want(k, v)
		e.wantMissing("\x00\xff\x01key")
	})
	t.Run("LargeValue", func(t *testing.T) {
		e := s.fresh(t)
		v := string(pattern(1<<20+3, 9))
		e.commit(put("big", v))
		e.want("big", v)
	})
}

func (s *suite) testCommit(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		e := s.fresh(t)
		e.commit()
		if err := e.Commit(ctx, &vfsbackend.Batch{}); err != nil {
			t.Fatalf("Commit(empty): %v", err)
		}
		if got := e.scan("", "", 0); len(got) != 0 {
			t.Errorf("after empty commits Scan = %q", got)
		}
	})
	t.Run("BatchHelpers", func(t *testing.T) {
		e := s.fresh(t)
		var b vfsbackend.Batch
		b.Put([]byte("a"), []byte("1"))
		b.Put([]byte("b"), []byte("2"))
		b.Delete([]byte("a"))
		if b.Len() != 3 {
			t.Fatalf("Len = %d", b.Len())
		}
		if err := e.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
		e.wantMissing("a")
		e.want("b", "2")
	})
	t.Run("Overwrite", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(put("k", "1"))
		e.commit(put("k", "22"))
		e.want("k", "22")
		e.commit(put("k", ""))
		e.want("k", "")
	})
	t.Run("Delete", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(put("a", "1"), put("b", "2"))
		e.commit(del("a"))
		e.wantMissing("a")
		e.want("b", "2")
	})
	t.Run("DeleteMissing", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(del("ghost"), put("x", "1"), del("ghost2"))
		e.wantMissing("ghost")
		e.want("x", "1")
	})
	t.Run("OrderWithinBatch", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(put("pd", "1"), del("pd")) // put then delete: gone
		e.wantMissing("pd")
		e.commit(put("dp", "old"))
		e.commit(del("dp"), put("dp", "new")) // delete then put: present
		e.want("dp", "new")
		e.commit(put("pp", "1"), put("pp", "2"), put("pp", "3")) // last put wins
		e.want("pp", "3")
		e.commit(put("pdp", "1"), del("pdp"), put("pdp", "2"), del("pdp"))
		e.wantMissing("pdp")
	})
	t.Run("ManyOps", func(t *testing.T) {
		e := s.fresh(t)
		var b vfsbackend.Batch
		for i := range 2000 {
			b.Put(fmt.Appendf(nil, "k%05d", i), fmt.Appendf(nil, "v%d", i))
		}
		if err := e.Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if got := e.scan("k", "", 0); len(got) != 2000 {
			t.Fatalf("Scan returned %d entries, want 2000", len(got))
		}
		e.want("k01999", "v1999")
	})
	t.Run("CallerBuffersNotRetained", func(t *testing.T) {
		e := s.fresh(t)
		k, v := []byte("key"), []byte("value")
		if err := e.Commit(ctx, &vfsbackend.Batch{Ops: []op{{Key: k, Value: v}}}); err != nil {
			t.Fatal(err)
		}
		copy(k, "KEY")
		copy(v, "VALUE")
		e.want("key", "value")
		e.wantMissing("KEY")
	})
}

func (s *suite) testScan(t *testing.T) {
	keys := []string{"", "a", "a\x00", "a\x00\x00", "a\x01", "ab", "abc", "abd", "ac", "b", "b\xff", "b\xff\xff", "c", "\xff", "\xff\xff\x00"}
	setup := func(t *testing.T) *engine {
		e := s.fresh(t)
		var ops []op
		for i, k := range rand.Perm(len(keys)) {
			_ = i
			ops = append(ops, put(keys[k], fmt.Sprint(k)))
		}
		e.commit(ops...)
		return e
	}
	// expect returns the entries with prefix and >= start, in order.
	expect := func(prefix, start string) []string {
		var out []string
		for i, k := range keys {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix && k >= start {
				out = append(out, k+"="+fmt.Sprint(i))
			}
		}
		return out
	}
	if !sort.StringsAreSorted(keys) {
		t.Fatal("suite bug: keys not sorted")
	}
	t.Run("All", func(t *testing.T) {
		e := setup(t)
		check(t, "Scan(nil, nil)", e.scan("", "", 0), expect("", ""))
		var n int
		if err := e.Scan(ctx, []byte{}, []byte{}, func(k, v []byte) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
		if n != len(keys) {
			t.Errorf("Scan(empty, empty) saw %d keys, want %d", n, len(keys))
		}
	})
	t.Run("Prefix", func(t *testing.T) {
		e := setup(t)
		for _, p := range []string{"a", "a\x00", "ab", "abc", "b\xff", "\xff", "\xff\xff", "zzz", "abcd", "c"} {
			check(t, fmt.Sprintf("Scan(%q)", p), e.scan(p, "", 0), expect(p, ""))
		}
	})
	t.Run("Start", func(t *testing.T) {
		e := setup(t)
		cases := [][2]string{
			{"a", "a"},           // start == prefix
			{"a", "ab"},          // start is a key: inclusive
			{"a", "ab\x00"},      // start between keys
			{"a", "a\x00\x00"},   // start is a key
			{"a", "az"},          // start past every key with the prefix
			{"a", "b"},           // start past the prefix range
			{"b", "a"},           // start before the prefix
			{"", "b"},            // no prefix
			{"", "\xff\xff"},     // near the end
			{"\xff", "\xff\xff"}, // prefix 0xff
		}
		for _, c := range cases {
			check(t, fmt.Sprintf("Scan(%q, start %q)", c[0], c[1]), e.scan(c[0], c[1], 0), expect(c[0], c[1]))
		}
	})
	t.Run("EarlyStop", func(t *testing.T) {
		e := setup(t)
		for _, limit := range []int{1, 2, 5} {
			check(t, fmt.Sprintf("Scan(a) stopping after %d", limit), e.scan("a", "", limit), expect("a", "")[:limit])
		}
	})
	t.Run("Empty", func(t *testing.T) {
		e := s.fresh(t)
		check(t, "Scan on an empty engine", e.scan("", "", 0), nil)
		e.commit(put("x", "1"))
		check(t, "Scan(y)", e.scan("y", "", 0), nil)
	})
	t.Run("SeesCommits", func(t *testing.T) {
		e := setup(t)
		e.commit(del("ab"), put("abz", "new"), put("abc", "changed"))
		want := []string{"abc=changed", "abd=7", "abz=new"}
		check(t, "Scan(ab) after changes", e.scan("ab", "", 0), want)
	})
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("%s =\n\t%q\nwant\n\t%q", what, got, want)
	}
}

func (s *suite) testData(t *testing.T) {
	t.Run("Missing", func(t *testing.T) {
		e := s.fresh(t)
		e.wantData(1, 0, nil, 10)
		e.wantData(1, 1<<40, nil, 10)
		e.wantSize(1, -1)
	})
	t.Run("WriteRead", func(t *testing.T) {
		e := s.fresh(t)
		p := pattern(1000, 1)
		e.write(5, p, 0)
		e.wantData(5, 0, p, 0)
		e.wantData(5, 100, p[100:200], 0)
		e.wantSize(5, 1000)
		e.wantData(6, 0, nil, 10) // another inode is untouched
	})
	t.Run("ShortReadAtEOF", func(t *testing.T) {
		e := s.fresh(t)
		p := pattern(100, 2)
		e.write(5, p, 0)
		e.wantData(5, 90, p[90:], 50)    // spans EOF: short
		e.wantData(5, 100, nil, 10)      // at EOF: 0
		e.wantData(5, 1000, nil, 10)     // past EOF: 0
		e.wantData(5, 0, p, 1)           // one more than the object
		e.wantData(5, 99, p[99:], 1<<20) // large buffer
	})
	t.Run("EmptyBuffer", func(t *testing.T) {
		e := s.fresh(t)
		e.write(5, []byte("abc"), 0)
		e.wantData(5, 1, nil, 0)
	})
	t.Run("SparseHole", func(t *testing.T) {
		e := s.fresh(t)
		p := pattern(10, 3)
		off := int64(3<<20 + 5)
		e.write(5, p, off)
		e.wantSize(5, off+10)
		e.wantData(5, 0, zeros(100), 0)
		e.wantData(5, off-100, cat(zeros(100), p), 0)
		e.wantData(5, 0, cat(zeros(int(off)), p), 10)
	})
	t.Run("HoleBetweenWrites", func(t *testing.T) {
		e := s.fresh(t)
		a, b := pattern(10, 4), pattern(10, 5)
		e.write(5, a, 0)
		e.write(5, b, 200_000)
		e.wantData(5, 0, cat(a, zeros(200_000-10), b), 5)
	})
	t.Run("Overwrite", func(t *testing.T) {
		e := s.fresh(t)
		base := pattern(200_000, 6)
		e.write(5, base, 0)
		mid := pattern(100_000, 7) // crosses 64 KiB boundaries
		e.write(5, mid, 50_000)
		want := bytes.Clone(base)
		copy(want[50_000:], mid)
		e.wantData(5, 0, want, 10)
		e.write(5, []byte("tail"), 199_998) // overlaps the end and extends it
		want = append(want[:199_998], "tail"...)
		e.wantData(5, 0, want, 10)
		e.wantSize(5, 200_002)
	})
	t.Run("ZeroLengthWrite", func(t *testing.T) {
		e := s.fresh(t)
		e.write(5, []byte("abc"), 0)
		e.write(5, nil, 1000)
		e.write(5, []byte{}, 1)
		e.wantSize(5, 3)
		e.wantData(5, 0, []byte("abc"), 10)
	})
	t.Run("NegativeOffset", func(t *testing.T) {
		e := s.fresh(t)
		if err := e.WriteData(ctx, 5, []byte("x"), -1); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("WriteData at -1: %v, want EINVAL", err)
		}
		if _, err := e.ReadData(ctx, 5, make([]byte, 1), -1); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ReadData at -1: %v, want EINVAL", err)
		}
		if err := e.TruncateData(ctx, 5, -1); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("TruncateData to -1: %v, want EINVAL", err)
		}
	})
	t.Run("Inodes", func(t *testing.T) {
		e := s.fresh(t)
		inos := []vfsbackend.Ino{0, 1, 256, 257, 1<<32 + 1, 1<<63 + 1, ^vfsbackend.Ino(0)}
		for i, ino := range inos {
			e.write(ino, pattern(10+i, byte(i)), int64(i))
		}
		for i, ino := range inos {
			e.wantData(ino, 0, cat(zeros(i), pattern(10+i, byte(i))), 10)
		}
	})
}

func (s *suite) testTruncate(t *testing.T) {
	t.Run("Shrink", func(t *testing.T) {
		e := s.fresh(t)
		p := pattern(200_000, 8)
		e.write(5, p, 0)
		e.truncate(5, 70_000)
		e.wantSize(5, 70_000)
		e.wantData(5, 0, p[:70_000], 100)
		e.truncate(5, 0)
		e.wantSize(5, 0)
		e.wantData(5, 0, nil, 100)
	})
	t.Run("Grow", func(t *testing.T) {
		e := s.fresh(t)
		e.write(5, []byte("abc"), 0)
		e.truncate(5, 300_000)
		e.wantSize(5, 300_000)
		e.wantData(5, 0, cat([]byte("abc"), zeros(300_000-3)), 10)
	})
	t.Run("ShrinkThenGrowShowsZeros", func(t *testing.T) {
		e := s.fresh(t)
		p := pattern(150_000, 9)
		e.write(5, p, 0)
		e.truncate(5, 10)
		e.truncate(5, 150_000)
		e.wantData(5, 0, cat(p[:10], zeros(150_000-10)), 10)
		e.truncate(5, 65536)
		e.write(5, []byte("z"), 140_000) // grow by writing: the gap is zeros
		e.wantData(5, 0, cat(p[:10], zeros(140_000-10), []byte("z")), 10)
	})
	t.Run("Missing", func(t *testing.T) {
		e := s.fresh(t)
		e.truncate(5, 0)
		e.wantSize(5, -1)
		e.wantData(5, 0, nil, 10)
		e.truncate(6, 1000)
		e.wantSize(6, 1000)
		e.wantData(6, 0, zeros(1000), 10)
	})
	t.Run("Same", func(t *testing.T) {
		e := s.fresh(t)
		e.write(5, []byte("abc"), 0)
		e.truncate(5, 3)
		e.wantData(5, 0, []byte("abc"), 10)
	})
}

// testDataFile checks vfsbackend.FileData, for engines that have it: the
// file holds what ReadData reads, nil for no object, and stays readable
// until released even when the object is deleted meanwhile.
func (s *suite) testDataFile(t *testing.T) {
	e := s.fresh(t)
	fd, ok := e.Backend.(vfsbackend.FileData)
	if !ok {
		t.Skip("engine has no data files")
	}
	f, release, err := fd.DataFile(ctx, 5)
	if err != nil || f != nil || release == nil {
		t.Fatalf("DataFile of a missing object: %v, %v", f, err)
	}
	release()
	want := pattern(100000, 12)
	e.write(5, want, 4096)
	f, release, err = fd.DataFile(ctx, 5)
	if err != nil || f == nil {
		t.Fatalf("DataFile: %v, %v", f, err)
	}
	if err := e.DeleteData(ctx, 5); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096+len(want)+10)
	n, err := f.ReadAt(got, 0)
	if n != 4096+len(want) || !bytes.Equal(got[4096:n], want) || !bytes.Equal(got[:4096], make([]byte, 4096)) {
		t.Fatalf("pread of the data file after DeleteData: %d bytes, %v", n, err)
	}
	release()
	release() // twice is harmless
	e.wantSize(5, -1)
}

func (s *suite) testDeleteData(t *testing.T) {
	t.Run("Delete", func(t *testing.T) {
		e := s.fresh(t)
		e.write(5, pattern(1000, 10), 0)
		e.write(6, []byte("keep"), 0)
		if err := e.DeleteData(ctx, 5); err != nil {
			t.Fatal(err)
		}
		e.wantData(5, 0, nil, 10)
		e.wantSize(5, -1)
		e.wantData(6, 0, []byte("keep"), 10)
	})
	t.Run("Idempotent", func(t *testing.T) {
		e := s.fresh(t)
		for range 2 {
			if err := e.DeleteData(ctx, 5); err != nil {
				t.Fatalf("DeleteData of a missing object: %v", err)
			}
		}
		e.write(5, []byte("x"), 0)
		for range 2 {
			if err := e.DeleteData(ctx, 5); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("WriteAfterDeleteStartsEmpty", func(t *testing.T) {
		e := s.fresh(t)
		e.write(5, pattern(1000, 11), 0)
		if err := e.DeleteData(ctx, 5); err != nil {
			t.Fatal(err)
		}
		e.write(5, []byte("new"), 500)
		e.wantData(5, 0, cat(zeros(500), []byte("new")), 10)
		e.wantSize(5, 503)
	})
}

func (s *suite) testListData(t *testing.T) {
	t.Run("Sizes", func(t *testing.T) {
		e := s.fresh(t)
		if got := e.objects(); len(got) != 0 {
			t.Errorf("ListData on an empty engine = %v", got)
		}
		want := map[vfsbackend.Ino]int64{}
		for i := range 50 {
			ino := vfsbackend.Ino(i*97 + 3)
			e.write(ino, []byte("x"), int64(i*1000))
			want[ino] = int64(i*1000 + 1)
		}
		e.truncate(3, 0)
		want[3] = 0
		e.truncate(1<<40, 77)
		want[1<<40] = 77
		if err := e.DeleteData(ctx, 100); err != nil {
			t.Fatal(err)
		}
		delete(want, 100)
		if got := e.objects(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ListData =\n\t%v\nwant\n\t%v", got, want)
		}
	})
	t.Run("EarlyStop", func(t *testing.T) {
		e := s.fresh(t)
		for i := range 10 {
			e.write(vfsbackend.Ino(i), []byte("x"), 0)
		}
		n := 0
		if err := e.ListData(ctx, func(vfsbackend.Ino, int64) bool { n++; return n < 3 }); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("ListData called fn %d times after it returned false on the 3rd", n)
		}
	})
}

func (s *suite) testUsage(t *testing.T) {
	e := s.fresh(t)
	check := func() vfsbackend.Usage {
		t.Helper()
		u, err := e.Usage(ctx)
		if err != nil {
			t.Fatalf("Usage: %v", err)
		}
		if u.TotalBytes == 0 || u.FreeBytes > u.TotalBytes || u.AvailBytes > u.TotalBytes || u.FreeInodes > u.TotalInodes {
			t.Errorf("Usage = %+v: inconsistent", u)
		}
		return u
	}
	before := check()
	e.write(5, pattern(1<<20, 12), 0)
	e.commit(put("k", string(pattern(1<<16, 13))))
	after := check()
	if after.TotalBytes != before.TotalBytes {
		t.Logf("TotalBytes changed from %d to %d", before.TotalBytes, after.TotalBytes)
	}
}

func (s *suite) testSync(t *testing.T) {
	e := s.fresh(t)
	if err := e.Sync(ctx); err != nil {
		t.Fatalf("Sync on an empty engine: %v", err)
	}
	e.commit(put("k", "v"))
	e.write(5, []byte("data"), 10)
	if err := e.SyncData(ctx, 5); err != nil {
		t.Fatalf("SyncData: %v", err)
	}
	if err := e.SyncData(ctx, 6); err != nil {
		t.Fatalf("SyncData of a missing object: %v", err)
	}
	if err := e.DeleteData(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := e.SyncData(ctx, 5); err != nil {
		t.Fatalf("SyncData of a deleted object: %v", err)
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := e.Sync(ctx); err != nil {
		t.Fatalf("Sync with nothing to do: %v", err)
	}
	e.want("k", "v")
}

func (s *suite) testClose(t *testing.T) {
	e := s.fresh(t)
	e.commit(put("k", "v"))
	e.write(5, []byte("data"), 0)
	e.close()
}

// testConcurrent runs many goroutines against one engine; run it with -race.
func (s *suite) testConcurrent(t *testing.T) {
	e := s.fresh(t)
	const workers = 8
	const rounds = 200
	var wg sync.WaitGroup
	errs := make(chan error, workers*4)
	fail := func(format string, a ...any) {
		select {
		case errs <- fmt.Errorf(format, a...):
		default:
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ino := vfsbackend.Ino(1000 + w)
			last := -1
			for i := range rounds {
				// Own keys, plus a shared counter-like key everybody overwrites.
				b := &vfsbackend.Batch{}
				b.Put(fmt.Appendf(nil, "w%d/k%04d", w, i), fmt.Appendf(nil, "%d", i))
				b.Put(fmt.Appendf(nil, "w%d/last", w), fmt.Appendf(nil, "%d", i))
				b.Put([]byte("shared"), fmt.Appendf(nil, "%d/%d", w, i))
				if i%3 == 0 && i > 0 {
					b.Delete(fmt.Appendf(nil, "w%d/k%04d", w, i-1))
				}
				if err := e.Commit(ctx, b); err != nil {
					fail("Commit: %v", err)
					return
				}
				v, err := e.Get(ctx, fmt.Appendf(nil, "w%d/last", w))
				if err != nil || string(v) != fmt.Sprint(i) {
					fail("worker %d round %d: Get(last) = %q, %v", w, i, v, err)
					return
				}
				_ = last
				last = i
				// Data: own inode, plus disjoint ranges of a shared one.
				chunk := pattern(1000, byte(i))
				if err := e.WriteData(ctx, ino, chunk, int64(i)*1000); err != nil {
					fail("WriteData: %v", err)
					return
				}
				if err := e.WriteData(ctx, 999, chunk[:100], int64(i*workers+w)*100); err != nil {
					fail("WriteData shared: %v", err)
					return
				}
				p := make([]byte, 1000)
				if n, err := e.ReadData(ctx, ino, p, int64(i)*1000); err != nil || n != 1000 || !bytes.Equal(p, chunk) {
					fail("worker %d round %d: ReadData = %d, %v, equal %v", w, i, n, err, bytes.Equal(p, chunk))
					return
				}
				if i%50 == 0 {
					prefix := fmt.Appendf(nil, "w%d/k", w)
					prev := ""
					if err := e.Scan(ctx, prefix, nil, func(k, v []byte) bool {
						if string(k) <= prev {
							fail("Scan out of order: %q after %q", k, prev)
						}
						prev = string(k)
						return true
					}); err != nil {
						fail("Scan: %v", err)
					}
					if err := e.Sync(ctx); err != nil {
						fail("Sync: %v", err)
					}
					if err := e.SyncData(ctx, ino); err != nil {
						fail("SyncData: %v", err)
					}
					if _, err := e.Usage(ctx); err != nil {
						fail("Usage: %v", err)
					}
					if err := e.ListData(ctx, func(vfsbackend.Ino, int64) bool { return true }); err != nil {
						fail("ListData: %v", err)
					}
				}
			}
			// Churn: create, truncate and delete temporary objects.
			for i := range 20 {
				tmp := vfsbackend.Ino(5000 + w*100 + i)
				if err := e.WriteData(ctx, tmp, []byte("tmp"), 10); err != nil {
					fail("WriteData tmp: %v", err)
				}
				if err := e.TruncateData(ctx, tmp, 5); err != nil {
					fail("TruncateData tmp: %v", err)
				}
				if err := e.DeleteData(ctx, tmp); err != nil {
					fail("DeleteData tmp: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	checkConcurrentResult(t, e, workers, rounds)
}

func checkConcurrentResult(t *testing.T, e *engine, workers, rounds int) {
	t.Helper()
	for w := range workers {
		want := []string{}
		for i := range rounds {
			if i%3 == 2 && i < rounds-1 {
				continue // deleted by round i+1
			}
			want = append(want, fmt.Sprintf("w%d/k%04d=%d", w, i, i))
		}
		check(t, fmt.Sprintf("worker %d keys", w), e.scan(fmt.Sprintf("w%d/k", w), "", 0), want)
		e.want(fmt.Sprintf("w%d/last", w), fmt.Sprint(rounds-1))
		var data []byte
		for i := range rounds {
			data = append(data, pattern(1000, byte(i))...)
		}
		e.wantData(vfsbackend.Ino(1000+w), 0, data, 10)
	}
	var shared []byte
	for i := range rounds {
		for range workers {
			shared = append(shared, pattern(100, byte(i))...)
		}
	}
	e.wantData(999, 0, shared, 10)
	objs := e.objects()
	if len(objs) != workers+1 {
		t.Errorf("ListData has %d objects, want %d: %v", len(objs), workers+1, objs)
	}
}

func (s *suite) testReopen(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		e := s.fresh(t)
		e.reopen()
		check(t, "Scan after reopen", e.scan("", "", 0), nil)
		if got := e.objects(); len(got) != 0 {
			t.Errorf("ListData after reopen = %v", got)
		}
	})
	t.Run("Metadata", func(t *testing.T) {
		e := s.fresh(t)
		e.commit(put("a", "1"), put("b", "2"), put("c", "3"))
		e.commit(del("b"), put("a", "11"))
		e.commit(put("pd", "x"), del("pd"))
		e.commit(del("dp"), put("dp", "y"))
		e.commit(put("empty", ""), put("\x00bin\xff", "\xff\x00"))
		want := e.scan("", "", 0)
		e.reopen()
		check(t, "Scan after reopen", e.scan("", "", 0), want)
		e.want("a", "11")
		e.wantMissing("b")
		e.wantMissing("pd")
		// Keep going on the reopened engine and reopen again.
		e.commit(put("after", "1"), del("c"))
		want = e.scan("", "", 0)
		e.reopen()
		check(t, "Scan after second reopen", e.scan("", "", 0), want)
	})
	t.Run("ManyCommits", func(t *testing.T) {
		e := s.fresh(t)
		for i := range 3000 {
			e.commit(put(fmt.Sprintf("k%05d", i%1000), fmt.Sprint(i)), del(fmt.Sprintf("k%05d", (i+500)%1000)))
		}
		want := e.scan("", "", 0)
		e.reopen()
		check(t, "Scan after reopen", e.scan("", "", 0), want)
	})
	t.Run("Data", func(t *testing.T) {
		e := s.fresh(t)
		a := pattern(100_000, 14)
		e.write(1, a, 0)
		e.write(2, []byte("sparse"), 5<<20)
		e.write(3, pattern(1000, 15), 0)
		e.truncate(3, 10)
		e.truncate(4, 4096)
		e.write(5, []byte("gone"), 0)
		if err := e.DeleteData(ctx, 5); err != nil {
			t.Fatal(err)
		}
		e.write(6, []byte("synced"), 0)
		if err := e.SyncData(ctx, 6); err != nil {
			t.Fatal(err)
		}
		want := e.objects()
		e.reopen()
		if got := e.objects(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ListData after reopen =\n\t%v\nwant\n\t%v", got, want)
		}
		e.wantData(1, 0, a, 10)
		e.wantData(2, 5<<20-4, cat(zeros(4), []byte("sparse")), 10)
		e.wantData(3, 0, pattern(10, 15), 10)
		e.wantData(4, 0, zeros(4096), 10)
		e.wantData(5, 0, nil, 10)
		e.wantData(6, 0, []byte("synced"), 10)
	})
}
