package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// TestConvertSnapshot opens a volume in the format made before the index
// (a snapshot and WALs whose first records the snapshot covers): the first
// read-write open converts it, including after a conversion that died.
func TestConvertSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, crash := range []string{"", "tmp", "both"} {
		t.Run("crash="+crash, func(t *testing.T) {
			dir := t.TempDir()
			b := openT(t, dir, tuning{})
			for i := range 100 {
				commitT(t, b, putOp(fmt.Sprintf("k%03d", i), fmt.Sprint(i)))
			}
			if err := b.WriteData(ctx, 9, []byte("inline"), 0); err != nil {
				t.Fatal(err)
			}
			closeT(t, b)
			// A snapshot of the first 50 commits, as the old compaction
			// wrote it, and no index.
			m := newMemtable()
			for i := range 50 {
				m.apply(opPut, fmt.Appendf(nil, "k%03d", i), fmt.Append(nil, i))
			}
			m.apply(opInlinePut, inoKey(3), []byte("old inline"))
			if err := writeSnapshot(dir, m, 50); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, indexName)); err != nil {
				t.Fatal(err)
			}
			switch crash {
			case "tmp": // died while writing index.tmp
				if err := os.WriteFile(filepath.Join(dir, indexTmpName), []byte("partial"), 0o600); err != nil {
					t.Fatal(err)
				}
			case "both": // died after the rename, before removing the snapshot
				snap, err := os.ReadFile(filepath.Join(dir, snapName))
				if err != nil {
					t.Fatal(err)
				}
				b := openT(t, dir, tuning{})
				closeT(t, b)
				if err := os.WriteFile(filepath.Join(dir, snapName), snap, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Read-only sees the old format as it is, and writes nothing.
			if crash == "" {
				before := dirContent(t, dir)
				ro, err := Open(vfsbackend.Options{Path: dir, ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				if v, ok := getT(t, ro, "k099"); !ok || v != "99" {
					t.Errorf("read-only k099 = %q, %v", v, ok)
				}
				closeT(t, ro)
				if after := dirContent(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Error("a read-only open changed the old-format volume")
				}
			}
			b = openT(t, dir, tuning{})
			for i := range 100 {
				if v, ok := getT(t, b, fmt.Sprintf("k%03d", i)); !ok || v != fmt.Sprint(i) {
					t.Errorf("k%03d = %q, %v", i, v, ok)
				}
			}
			if got := readAllT(t, b, 3); string(got) != "old inline" {
				t.Errorf("inline 3 = %q", got)
			}
			if got := readAllT(t, b, 9); string(got) != "inline" {
				t.Errorf("inline 9 = %q", got)
			}
			if b.storeSeq() < 50 {
				t.Errorf("index at %d, want >= 50", b.storeSeq())
			}
			closeT(t, b)
			for _, name := range []string{snapName, indexTmpName} {
				if exists(filepath.Join(dir, name)) {
					t.Errorf("%s left after the conversion", name)
				}
			}
		})
	}
}

// TestDamagedIndex: a damaged or missing index is a clear error that
// changes nothing, never a crash or an empty volume.
func TestDamagedIndex(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{compactThreshold: 1 << 10})
	for i := range 200 {
		commitT(t, b, putOp(fmt.Sprintf("k%03d", i), "some value to fill the WAL"))
	}
	b.compactWG.Wait()
	if b.storeSeq() == 0 {
		t.Fatal("no checkpoint")
	}
	closeT(t, b)
	path := filepath.Join(dir, indexName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	try := func(what string) {
		t.Helper()
		before := dirContent(t, dir)
		b, err := open(vfsbackend.Options{Path: dir}, tuning{compactThreshold: defaultCompactThreshold, maxOpenFiles: 8})
		if err == nil {
			_ = b.Close()
			t.Fatalf("%s: open succeeded", what)
		}
		if !errors.Is(err, vfsbackend.ErrDamaged) {
			t.Errorf("%s: %v, want ErrDamaged", what, err)
		}
		if after := dirContent(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s: the failed open changed the volume", what)
		}
	}
	// Garbage over the whole file, then a truncated file, then none.
	junk := make([]byte, len(good))
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	try("garbage index")
	if err := os.WriteFile(path, good[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	try("truncated index")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	try("missing index")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	b = openT(t, dir, tuning{})
	if v, ok := getT(t, b, "k199"); !ok || v != "some value to fill the WAL" {
		t.Errorf("k199 = %q, %v after restoring the index", v, ok)
	}
	closeT(t, b)
}

// TestMetadataCacheBound: with a small metadata cache, the overlays stay
// near it (commits wait for a checkpoint while the overlay is full) and
// everything committed is there, from the index, after a reopen.
func TestMetadataCacheBound(t *testing.T) {
	dir := t.TempDir()
	const memMax = 64 << 10
	tune := tuning{memMax: memMax}
	b := openT(t, dir, tune)
	var peak int64
	const n = 20000
	for i := range n {
		commitT(t, b, putOp(fmt.Sprintf("key/%06d", i), fmt.Sprintf("value %d of a file's record, padded to look like one", i)))
		b.idxMu.RLock()
		mem := b.act.mem
		if b.frz != nil {
			mem += b.frz.mem
		}
		b.idxMu.RUnlock()
		peak = max(peak, mem)
	}
	b.compactWG.Wait()
	if peak > 4*memMax {
		t.Errorf("overlays peaked at %d bytes, cache half is %d", peak, memMax)
	}
	if b.storeSeq() < n/2 {
		t.Errorf("index at sequence %d after %d commits", b.storeSeq(), n)
	}
	closeT(t, b)
	b = openT(t, dir, tune)
	defer closeT(t, b)
	i := 0
	if err := b.Scan(context.Background(), []byte("key/"), nil, func(k, v []byte) bool {
		if want := fmt.Sprintf("key/%06d", i); string(k) != want {
			t.Fatalf("scan: %q, want %q", k, want)
		}
		i++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Errorf("scan found %d keys, want %d", i, n)
	}
}

// TestSnapshotNewerThanIndex: an older proxyfs that served a converted
// volume wrote a snapshot newer than the index; the next open converts
// that snapshot again instead of discarding it.
func TestSnapshotNewerThanIndex(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{compactThreshold: 1 << 10})
	for i := range 100 {
		commitT(t, b, putOp(fmt.Sprintf("k%03d", i), "before the downgrade"))
	}
	b.compactWG.Wait()
	b.commitMu.Lock()
	b.tune.compactThreshold = 1 << 30 // no more checkpoints
	b.commitMu.Unlock()
	for i := range 5 {
		commitT(t, b, putOp(fmt.Sprintf("late%d", i), "after the last checkpoint"))
	}
	indexSeq, seq := b.storeSeq(), b.seq
	if indexSeq == 0 || indexSeq >= seq {
		t.Fatalf("index at %d of %d: want a checkpoint behind the last commit", indexSeq, seq)
	}
	// What the older proxyfs saw, plus its own change, as of a later seq.
	m := newMemtable()
	if err := b.Scan(context.Background(), nil, nil, func(k, v []byte) bool {
		m.apply(opPut, k, v)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	closeT(t, b)
	m.apply(opPut, []byte("written by an older proxyfs"), []byte("1"))
	if err := writeSnapshot(dir, m, seq); err != nil {
		t.Fatal(err)
	}
	b = openT(t, dir, tuning{})
	if v, ok := getT(t, b, "written by an older proxyfs"); !ok || v != "1" {
		t.Errorf("the newer snapshot was not converted: %q, %v", v, ok)
	}
	if v, ok := getT(t, b, "k099"); !ok || v != "before the downgrade" {
		t.Errorf("k099 = %q, %v", v, ok)
	}
	if b.storeSeq() != seq {
		t.Errorf("index at %d, want %d", b.storeSeq(), seq)
	}
	closeT(t, b)
	if exists(filepath.Join(dir, snapName)) {
		t.Error("snapshot left after its conversion")
	}
}

// TestScanCallbackPanic: a panic of Scan's callback is the caller's (a
// bug upstream), not taken for a damaged index; the index's own panics
// still are (TestDamagedIndex).
func TestScanCallbackPanic(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{})
	defer closeT(t, b)
	commitT(t, b, putOp("a", "1"))
	var got any
	func() {
		defer func() { got = recover() }()
		err := b.Scan(context.Background(), nil, nil, func(key, value []byte) bool { panic("caller's bug") })
		t.Errorf("Scan returned %v instead of panicking", err)
	}()
	if got != "caller's bug" {
		t.Fatalf("recovered %v, want the callback's panic", got)
	}
	if err := b.Health(); err != nil {
		t.Errorf("engine unhealthy after a callback's panic: %v", err)
	}
	n := 0
	if err := b.Scan(context.Background(), nil, nil, func(key, value []byte) bool { n++; return true }); err != nil || n != 1 {
		t.Errorf("scan after: %d keys, %v", n, err)
	}
}

// The store's kept read transactions never show a store older than the
// last write: a write ends the idle ones, and one in use while a write
// starts is not kept. Readers run beside writes (go test -race).
func TestStoreReadTxReuse(t *testing.T) {
	s, err := openStore(t.TempDir(), true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.close(); err != nil {
			t.Error(err)
		}
	}()
	key := []byte("k")
	put := func(v uint64) {
		m := newMemtable()
		m.apply(opPut, key, binary.BigEndian.AppendUint64(nil, v))
		m.apply(opInlinePut, key, binary.BigEndian.AppendUint64(nil, v))
		if err := s.write(m, v); err != nil {
			t.Fatal(err)
		}
	}
	get := func(bucket []byte) uint64 {
		v, ok, err := s.get(bucket, key)
		if err != nil || !ok || len(v) != 8 {
			t.Fatalf("get: %x, %v, %v", v, ok, err)
		}
		return binary.BigEndian.Uint64(v)
	}
	put(1)
	for i := uint64(2); i < 20; i++ {
		if got := get(bucketKeys); got != i-1 {
			t.Fatalf("before write %d: %d", i, got)
		}
		put(i)
		if got, gotInl := get(bucketKeys), get(bucketInline); got != i || gotInl != i {
			t.Fatalf("after write %d: %d, inline %d", i, got, gotInl)
		}
		s.txMu.Lock()
		idle := len(s.idle)
		s.txMu.Unlock()
		if idle == 0 {
			t.Fatal("no read transaction kept after a get")
		}
	}
	if _, ok, err := s.get(bucketKeys, []byte("missing")); ok || err != nil {
		t.Fatalf("get of a missing key: %v, %v", ok, err)
	}
	if _, ok, err := s.get(bucketKeys, []byte("zzz")); ok || err != nil { // after the last key
		t.Fatalf("get of a missing key: %v, %v", ok, err)
	}
	m := newMemtable()
	m.apply(opPut, []byte("empty"), nil)
	m.apply(opInlinePut, []byte("empty"), nil)
	if err := s.write(m, 50); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range [][]byte{bucketKeys, bucketInline} {
		if v, ok, err := s.get(bucket, []byte("empty")); v == nil || len(v) != 0 || !ok || err != nil {
			t.Fatalf("get of an empty value: %v, %v, %v", v, ok, err)
		}
	}
	long := bytes.Repeat([]byte("x"), 300) // over get's stack buffer
	m = newMemtable()
	m.apply(opPut, long, []byte("long"))
	if err := s.write(m, 100); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.get(bucketKeys, long); string(v) != "long" || !ok || err != nil {
		t.Fatalf("get of a long key: %q, %v, %v", v, ok, err)
	}

	// Readers beside writes: what a reader sees never goes back, and once
	// a write returned every later get sees it.
	var done atomic.Bool
	var wg sync.WaitGroup
	var written atomic.Uint64
	written.Store(200)
	put(200)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := uint64(0)
			for !done.Load() {
				floor := written.Load()
				v, ok, err := s.get(bucketKeys, key)
				if err != nil || !ok {
					t.Errorf("get: %v, %v", ok, err)
					return
				}
				got := binary.BigEndian.Uint64(v)
				if got < last || got < floor {
					t.Errorf("get %d after %d, with %d written", got, last, floor)
					return
				}
				last = got
			}
		}()
	}
	for v := uint64(201); v < 260; v++ {
		m := newMemtable()
		m.apply(opPut, key, binary.BigEndian.AppendUint64(nil, v))
		if err := s.write(m, v); err != nil {
			t.Fatal(err)
		}
		written.Store(v)
	}
	done.Store(true)
	wg.Wait()
}

// Background checkpoints are reported to Options.Observe as "checkpoint".
func TestCheckpointObserved(t *testing.T) {
	var mu sync.Mutex
	ops := map[string]int{}
	b, err := open(vfsbackend.Options{Path: t.TempDir(), Format: vfsbackend.FormatIfNew,
		Observe: func(op string, start time.Time, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil && !start.IsZero() {
				ops[op]++
			}
		}}, tuning{memMax: 64 << 10, compactThreshold: defaultCompactThreshold, maxOpenFiles: defaultMaxOpenFiles, inlineMax: vfsbackend.DefaultInlineBytes})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		commitT(t, b, putOp(fmt.Sprintf("key/%06d", i), "a value of some length, like a file's record"))
	}
	b.compactWG.Wait()
	closeT(t, b)
	mu.Lock()
	defer mu.Unlock()
	if ops["checkpoint"] == 0 {
		t.Errorf("no checkpoint observed: %v", ops)
	}
}
