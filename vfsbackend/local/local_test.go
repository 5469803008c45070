package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
)

// TestConformance runs the engine conformance suite with small files
// inline (the default volume) and with every object in a file of its own
// (inline_bytes = 0).
func TestConformance(t *testing.T) {
	for _, inline := range []int{vfsbackend.DefaultInlineBytes, 0} {
		t.Run(fmt.Sprintf("inline=%d", inline), func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
				b, err := Open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew, InlineBytes: inline})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}, backendtest.Durable())
		})
	}
}

// TestConformanceCompacting runs the suite with a tiny compaction threshold,
// a tiny descriptor cache and tiny inline objects, so that compaction,
// eviction and moves of inline data to files run all the time.
func TestConformanceCompacting(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
		b, err := open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew}, tuning{compactThreshold: 4 << 10, maxOpenFiles: 2, inlineMax: 64})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, backendtest.Durable())
}

func openT(t testing.TB, dir string, tune tuning) *Backend {
	t.Helper()
	if tune.compactThreshold == 0 {
		tune.compactThreshold = defaultCompactThreshold
	}
	if tune.maxOpenFiles == 0 {
		tune.maxOpenFiles = defaultMaxOpenFiles
	}
	if tune.inlineMax == 0 {
		tune.inlineMax = vfsbackend.DefaultInlineBytes
	}
	b, err := open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew}, tune)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return b
}

func commitT(t *testing.T, b *Backend, ops ...vfsbackend.Op) {
	t.Helper()
	if err := b.Commit(context.Background(), &vfsbackend.Batch{Ops: ops}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func putOp(k, v string) vfsbackend.Op {
	return vfsbackend.Op{Key: []byte(k), Value: []byte(v)}
}

func getT(t *testing.T, b *Backend, k string) (string, bool) {
	t.Helper()
	v, err := b.Get(context.Background(), []byte(k))
	if errors.Is(err, syscall.ENOENT) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return string(v), true
}

func closeT(t *testing.T, b *Backend) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// activeWAL returns the path of the last WAL in dir.
func activeWAL(t *testing.T, dir string) string {
	t.Helper()
	wals, err := listWALs(dir)
	if err != nil || len(wals) == 0 {
		t.Fatalf("listWALs: %v, %d files", err, len(wals))
	}
	return wals[len(wals)-1].path
}

// TestTornTail damages the last WAL record in the ways a crash can and
// checks that the volume opens with every earlier record and stays usable.
func TestTornTail(t *testing.T) {
	damage := map[string]func(t *testing.T, path string, size, lastRec int64){
		"TruncatedMidRecord": func(t *testing.T, path string, size, lastRec int64) {
			if err := os.Truncate(path, size-3); err != nil {
				t.Fatal(err)
			}
		},
		"TruncatedMidHeader": func(t *testing.T, path string, size, lastRec int64) {
			if err := os.Truncate(path, lastRec+5); err != nil {
				t.Fatal(err)
			}
		},
		"FlippedByte": func(t *testing.T, path string, size, lastRec int64) {
			flipByte(t, path, size-2)
		},
		"FlippedSeq": func(t *testing.T, path string, size, lastRec int64) {
			flipByte(t, path, lastRec+9)
		},
		"FlippedLength": func(t *testing.T, path string, size, lastRec int64) {
			flipByte(t, path, lastRec+1) // claims far more bytes than the file has
		},
		"TrailingZeros": func(t *testing.T, path string, size, lastRec int64) {
			if err := os.Truncate(path, lastRec); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, lastRec+4096); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b := openT(t, dir, tuning{})
			for i := range 10 {
				commitT(t, b, putOp(fmt.Sprintf("k%d", i), fmt.Sprint(i)))
			}
			path := activeWAL(t, dir)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			lastRec := st.Size()
			commitT(t, b, putOp("k10", "10"), putOp("k11", "11"))
			closeT(t, b)
			st, err = os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, path, st.Size(), lastRec)

			b = openT(t, dir, tuning{})
			for i := range 10 {
				if v, ok := getT(t, b, fmt.Sprintf("k%d", i)); !ok || v != fmt.Sprint(i) {
					t.Errorf("k%d = %q, %v after reopen", i, v, ok)
				}
			}
			for _, k := range []string{"k10", "k11"} {
				if _, ok := getT(t, b, k); ok {
					t.Errorf("%s of the damaged record is visible", k)
				}
			}
			if st, err := os.Stat(path); err != nil || st.Size() != lastRec {
				t.Errorf("WAL not truncated to the last good record: %v, %v want %d", err, st.Size(), lastRec)
			}
			// Later commits follow the good records and survive.
			commitT(t, b, putOp("k12", "12"))
			closeT(t, b)
			b = openT(t, dir, tuning{})
			defer closeT(t, b)
			if v, ok := getT(t, b, "k12"); !ok || v != "12" {
				t.Errorf("k12 = %q, %v after the second reopen", v, ok)
			}
			if _, ok := getT(t, b, "k9"); !ok {
				t.Errorf("k9 lost after the second reopen")
			}
		})
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c [1]byte
	if _, err := f.ReadAt(c[:], off); err != nil {
		t.Fatal(err)
	}
	c[0] ^= 0x40
	if _, err := f.WriteAt(c[:], off); err != nil {
		t.Fatal(err)
	}
}

// TestEmptyWALFile covers a crash right after a WAL file was created.
func TestEmptyWALFile(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{})
	commitT(t, b, putOp("a", "1"))
	closeT(t, b)
	if err := os.WriteFile(filepath.Join(dir, walName(99)), []byte("PFS"), 0o600); err != nil {
		t.Fatal(err)
	}
	b = openT(t, dir, tuning{})
	commitT(t, b, putOp("b", "2"))
	closeT(t, b)
	b = openT(t, dir, tuning{})
	defer closeT(t, b)
	for k, want := range map[string]string{"a": "1", "b": "2"} {
		if v, ok := getT(t, b, k); !ok || v != want {
			t.Errorf("%s = %q, %v", k, v, ok)
		}
	}
}

// TestCrashBeforeWALSwap covers a kill -9 during a commit's write while a
// compaction had created the next WAL but not yet switched to it.
func TestCrashBeforeWALSwap(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{})
	commitT(t, b, putOp("a", "1"))
	commitT(t, b, putOp("b", "2"))
	closeT(t, b)
	old := activeWAL(t, dir)
	st, err := os.Stat(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(old, st.Size()-2); err != nil {
		t.Fatal(err)
	}
	f, err := createWAL(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, dir, tuning{})
	if v, ok := getT(t, b, "a"); !ok || v != "1" {
		t.Errorf("a = %q, %v", v, ok)
	}
	if _, ok := getT(t, b, "b"); ok {
		t.Errorf("torn record b is visible")
	}
	commitT(t, b, putOp("c", "3"))
	closeT(t, b)
	b = openT(t, dir, tuning{})
	defer closeT(t, b)
	if v, ok := getT(t, b, "c"); !ok || v != "3" {
		t.Errorf("c = %q, %v", v, ok)
	}
}

// TestDamagedOlderWAL checks that damage before the last record of an older
// WAL is reported, not silently dropped.
func TestDamagedOlderWAL(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{})
	commitT(t, b, putOp("a", "1"))
	commitT(t, b, putOp("b", "2"))
	closeT(t, b)
	old := activeWAL(t, dir)
	st, err := os.Stat(old)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, old, st.Size()-1)
	// A later WAL with records: the damaged one was not the tail.
	f, err := createWAL(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	rec := encodeRecord(&vfsbackend.Batch{Ops: []vfsbackend.Op{putOp("c", "3")}})
	finishRecord(rec, crc32.Checksum(rec[recHeaderSize:], castagnoli), 3)
	if _, err := f.WriteAt(rec, int64(len(walMagic))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew}, tuning{compactThreshold: defaultCompactThreshold, maxOpenFiles: 8}); err == nil {
		_ = b.Close()
		t.Fatal("open succeeded on a volume whose older WAL is damaged")
	} else if !errors.Is(err, errCorrupt) {
		t.Errorf("open: %v, want a corruption error", err)
	}
}

// waitCompacted commits until a checkpoint has finished.
func waitCompacted(t *testing.T, b *Backend, dir string, next func()) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		next()
		if b.storeSeq() > 0 && !b.compacting.Load() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint happened")
		}
	}
}

// TestCheckpoint forces checkpoints and checks index + WAL replay,
// including a leftover WAL that the index already covers.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	tune := tuning{compactThreshold: 8 << 10}
	b := openT(t, dir, tune)
	want := map[string]string{}
	i := 0
	next := func() {
		k := fmt.Sprintf("k%03d", i%300)
		v := fmt.Sprintf("v%d-%s", i, strings.Repeat("x", i%50))
		if i%7 == 0 {
			commitT(t, b, vfsbackend.Op{Delete: true, Key: []byte(k)})
			delete(want, k)
		} else {
			commitT(t, b, putOp(k, v))
			want[k] = v
		}
		i++
	}
	for range 50 {
		next()
	}
	first := activeWAL(t, dir)
	waitCompacted(t, b, dir, next)
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("first WAL still exists after a checkpoint: %v", err)
	}
	for range 500 { // more checkpoints, and records after the last one
		next()
	}
	b.compactWG.Wait()
	closeT(t, b)

	verify := func(b *Backend) {
		t.Helper()
		got := map[string]string{}
		if err := b.Scan(context.Background(), nil, nil, func(k, v []byte) bool {
			got[string(k)] = string(v)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after reopen: %d keys, want %d", len(got), len(want))
		}
		for k, v := range want {
			if g, ok := getT(t, b, k); !ok || g != v {
				t.Errorf("get %s = %q, %v, want %q", k, g, ok, v)
			}
		}
	}
	wals, err := listWALs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(wals) != 1 {
		t.Errorf("%d WAL files after a checkpoint, want 1", len(wals))
	}
	b = openT(t, dir, tune)
	verify(b)
	closeT(t, b)

	// A leftover WAL that the index covers: its records are skipped.
	b = openT(t, dir, tuning{})
	commitT(t, b, putOp("late", "1"))
	commitT(t, b, vfsbackend.Op{Delete: true, Key: []byte("k001")})
	want["late"] = "1"
	delete(want, "k001")
	// Write the overlay to the index but keep the WAL (as if the crash
	// came right after the index's commit).
	b.commitMu.Lock()
	b.idxMu.Lock()
	err = b.store.write(b.act, b.seq)
	b.idxMu.Unlock()
	b.commitMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	closeT(t, b)
	b = openT(t, dir, tuning{})
	verify(b)
	commitT(t, b, putOp("later", "2"))
	want["later"] = "2"
	closeT(t, b)
	b = openT(t, dir, tuning{})
	verify(b)
	closeT(t, b)

	// Leftovers of a compaction or a conversion that died are ignored.
	for _, name := range []string{snapTmpName, indexTmpName} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b = openT(t, dir, tuning{})
	verify(b)
	closeT(t, b)
	for _, name := range []string{snapTmpName, indexTmpName} {
		if exists(filepath.Join(dir, name)) {
			t.Errorf("%s left after open", name)
		}
	}
}

// TestLock checks that a volume can be open only once at a time.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{})
	_, err := Open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew})
	if !errors.Is(err, ErrLocked) || !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("second Open: %v, want ErrLocked/EBUSY", err)
	}
	t.Log(err)
	closeT(t, b)
	b2, err := vfsbackend.Open(Name, vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseIdempotentAndClosedErrors checks behaviour around Close.
func TestCloseIdempotentAndClosedErrors(t *testing.T) {
	b := openT(t, t.TempDir(), tuning{})
	closeT(t, b)
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Commit(context.Background(), &vfsbackend.Batch{Ops: []vfsbackend.Op{putOp("a", "b")}}); !errors.Is(err, syscall.EIO) {
		t.Errorf("Commit after Close: %v, want EIO", err)
	}
}

// TestFDCacheEviction uses more inodes than the descriptor cache holds,
// concurrently, and checks every file's content.
func TestFDCacheEviction(t *testing.T) {
	ctx := context.Background()
	b := openT(t, t.TempDir(), tuning{maxOpenFiles: 4})
	defer closeT(t, b)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ino := vfsbackend.Ino(i % 20)
				off := int64(w*1000 + i/20*8)
				if err := b.WriteData(ctx, ino, []byte(fmt.Sprintf("%08d", i)), off); err != nil {
					t.Error(err)
					return
				}
				p := make([]byte, 8)
				if n, err := b.ReadData(ctx, ino, p, off); err != nil || n != 8 || string(p) != fmt.Sprintf("%08d", i) {
					t.Errorf("read back %q, %d, %v", p, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.data.mu.Lock()
	n := len(b.data.open)
	b.data.mu.Unlock()
	if n > 4 {
		t.Errorf("%d files open, cache size 4", n)
	}
}

const (
	crashEnvDir = "PROXYFS_LOCAL_CRASH_DIR"
	crashInos   = 16
)

// crashChild is the subprocess of TestCrash: it commits numbered batches
// and writes numbered data, printing each number once both returned.
func crashChild() {
	ctx := context.Background()
	b, err := open(vfsbackend.Options{Path: os.Getenv(crashEnvDir), Format: vfsbackend.FormatIfNew}, tuning{compactThreshold: 32 << 10, maxOpenFiles: 8, inlineMax: 1024})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	start := 0
	if v, err := b.Get(ctx, []byte("last")); err == nil {
		start, _ = strconv.Atoi(string(v))
	}
	for i := start + 1; ; i++ {
		var bt vfsbackend.Batch
		bt.Put([]byte(fmt.Sprintf("seq/%08d", i)), []byte(strconv.Itoa(i)))
		bt.Put([]byte("last"), []byte(strconv.Itoa(i)))
		bt.Put([]byte(fmt.Sprintf("pad/%d", i%500)), bytes.Repeat([]byte{'p'}, i%100))
		if err := b.Commit(ctx, &bt); err != nil {
			fmt.Fprintln(os.Stderr, "child commit:", err)
			os.Exit(2)
		}
		var d [8]byte
		binary.LittleEndian.PutUint64(d[:], uint64(i))
		if err := b.WriteData(ctx, vfsbackend.Ino(i%crashInos), d[:], int64(i/crashInos)*8); err != nil {
			fmt.Fprintln(os.Stderr, "child write:", err)
			os.Exit(2)
		}
		if i%1000 == 0 {
			if err := b.SyncData(ctx, vfsbackend.Ino(i%crashInos)); err != nil {
				fmt.Fprintln(os.Stderr, "child sync:", err)
				os.Exit(2)
			}
		}
		if _, err := fmt.Fprintf(os.Stdout, "%d\n", i); err != nil {
			os.Exit(2)
		}
	}
}

// TestCrash kills a committing subprocess with SIGKILL at random moments
// and checks that every acknowledged commit and write survived.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		crashChild()
		return
	}
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := 0
	// Numbers whose commit became visible although the child died before
	// acknowledging it: their data write may never have happened.
	noData := map[int]bool{}
	for cycle := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
		cmd.Env = append(os.Environ(), crashEnvDir+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan int, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				n, err := strconv.Atoi(sc.Text())
				if err == nil {
					lines <- n
				}
			}
		}()
		// Wait for the first acknowledgement, then kill at a random moment.
		first, ok := <-lines
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("cycle %d: child acknowledged nothing; stderr: %s", cycle, stderr.String())
		}
		if first != acked+1 && acked != 0 {
			t.Errorf("cycle %d: child started at %d, %d was the last acknowledged", cycle, first, acked)
		}
		acked = max(acked, first)
		delay := time.Duration(rng.IntN(300)) * time.Millisecond
		timer := time.NewTimer(delay)
	collect:
		for {
			select {
			case n, ok := <-lines:
				if !ok {
					break collect
				}
				acked = max(acked, n)
			case <-timer.C:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				timer.C = nil
			}
		}
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("cycle %d: child did not die of SIGKILL: %v; stderr: %s", cycle, werr, stderr.String())
		}

		b := openT(t, dir, tuning{})
		last, ok := getT(t, b, "last")
		lastN, _ := strconv.Atoi(last)
		if !ok || lastN < acked || lastN > acked+1 {
			t.Fatalf("cycle %d: last = %q, acknowledged %d", cycle, last, acked)
		}
		for i := 1; i <= lastN; i++ {
			if v, ok := getT(t, b, fmt.Sprintf("seq/%08d", i)); !ok || v != strconv.Itoa(i) {
				t.Fatalf("cycle %d: seq %d = %q, %v (acknowledged up to %d)", cycle, i, v, ok, acked)
			}
		}
		var d [8]byte
		for i := 1; i <= acked; i++ {
			if noData[i] {
				continue
			}
			n, err := b.ReadData(context.Background(), vfsbackend.Ino(i%crashInos), d[:], int64(i/crashInos)*8)
			if err != nil || n != 8 || binary.LittleEndian.Uint64(d[:]) != uint64(i) {
				t.Fatalf("cycle %d: data of %d = %x, %d, %v", cycle, i, d, n, err)
			}
		}
		t.Logf("cycle %d: killed after %v, %d acknowledged, %d visible", cycle, delay, acked, lastN)
		if lastN > acked {
			noData[lastN] = true
		}
		acked = lastN // the child continues after what is visible
		closeT(t, b)
	}
	// The children's small threshold must have made them checkpoint.
	b := openT(t, dir, tuning{})
	if b.storeSeq() == 0 {
		t.Error("no checkpoint in the crash cycles")
	}
	closeT(t, b)
}

// BenchmarkCommit measures a small metadata commit (what a create costs),
// from several goroutines.
func BenchmarkCommit(bm *testing.B) {
	b := openT(bm, bm.TempDir(), tuning{})
	defer b.Close()
	var n atomic.Int64
	bm.SetParallelism(4)
	bm.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			var bt vfsbackend.Batch
			bt.Put(fmt.Appendf(nil, "i/%016x", i), bytes.Repeat([]byte{'a'}, 120))
			bt.Put(fmt.Appendf(nil, "d/1/name%d", i), fmt.Appendf(nil, "%d", i))
			if err := b.Commit(ctx, &bt); err != nil {
				bm.Fatal(err)
			}
		}
	})
}

// recordsAfterDamage tells damage in the middle of the last WAL (intact
// records behind it, dropped loudly) from a torn tail (nothing behind).
func TestRecordsAfterDamage(t *testing.T) {
	var data []byte
	data = append(data, walMagic...)
	var offs []int64
	for seq := uint64(1); seq <= 10; seq++ {
		var b vfsbackend.Batch
		b.Put([]byte(fmt.Sprintf("key%d", seq)), []byte("value"))
		rec := encodeRecord(&b)
		finishRecord(rec, crc32.Checksum(rec[recHeaderSize:], castagnoli), seq)
		offs = append(offs, int64(len(data)))
		data = append(data, rec...)
	}
	mid := bytes.Clone(data)
	mid[offs[4]+recHeaderSize+2] ^= 0x40 // record 5's ops
	if n, last := recordsAfterDamage(mid, offs[4], 4); n != 5 || last != 10 {
		t.Errorf("damage in record 5: found %d intact records up to seq %d, want 5 up to 10", n, last)
	}
	torn := data[:len(data)-3]
	if n, _ := recordsAfterDamage(torn, offs[9], 9); n != 0 {
		t.Errorf("torn tail: found %d intact records behind it", n)
	}
	zeros := append(bytes.Clone(data[:offs[9]]), make([]byte, 4096)...)
	if n, _ := recordsAfterDamage(zeros, offs[9], 9); n != 0 {
		t.Errorf("zeros: found %d records", n)
	}
}
