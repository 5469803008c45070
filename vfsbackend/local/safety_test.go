package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// TestCloseRacesSync runs Commit, Sync and SyncData against Close, over
// and over: Close used to take commitMu then walMu while syncWAL takes
// walMu then commitMu, and a flush racing Close hung for good.
func TestCloseRacesSync(t *testing.T) {
	iters := 200
	if testing.Short() {
		iters = 50
	}
	for i := 0; i < iters; i++ {
		b := openT(t, t.TempDir(), tuning{})
		ctx := context.Background()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					// Errors are expected once Close has begun.
					k := fmt.Sprintf("k%d-%d", g, n)
					_ = b.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{putOp(k, "v")}})
					if g%2 == 0 {
						_ = b.SyncData(ctx, vfsbackend.Ino(1000+g))
					} else {
						_ = b.Sync(ctx)
					}
				}
			}(g)
		}
		time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("iteration %d: Close: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("iteration %d: Close hung (lock-order deadlock with a racing sync)", i)
		}
		close(stop)
		wg.Wait()
	}
}

// TestFormatPolicy: a volume is formatted only where the policy allows,
// never over something else, and never where one was formatted before
// unless forced.
func TestFormatPolicy(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "vol")
	openP := func(p vfsbackend.FormatPolicy) (*Backend, error) {
		return Open(vfsbackend.Options{Path: dir, Format: p})
	}
	if _, err := openP(vfsbackend.FormatNever); !errors.Is(err, vfsbackend.ErrNoVolume) {
		t.Fatalf("FormatNever on a missing directory: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("FormatNever created the directory: %v", err)
	}
	if _, err := Open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatForce, ReadOnly: true}); !errors.Is(err, vfsbackend.ErrNoVolume) {
		t.Fatalf("read-only on a missing directory: %v", err)
	}
	b, err := openP(vfsbackend.FormatIfNew)
	if err != nil || !b.Formatted() {
		t.Fatalf("FormatIfNew on a new directory: %v", err)
	}
	commitT(t, b, putOp("k", "v"))
	closeT(t, b)
	if b, err = openP(vfsbackend.FormatNever); err != nil || b.Formatted() {
		t.Fatalf("FormatNever on the volume: %v", err)
	}
	closeT(t, b)

	// Deleted (or a disk not mounted): the parent's marker remembers.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil { // an empty mount point
		t.Fatal(err)
	}
	if _, err := openP(vfsbackend.FormatIfNew); !errors.Is(err, vfsbackend.ErrNoVolume) || !strings.Contains(err.Error(), "was it deleted") {
		t.Fatalf("FormatIfNew where a volume was: %v", err)
	}
	b, err = openP(vfsbackend.FormatForce)
	if err != nil || !b.Formatted() {
		t.Fatalf("FormatForce: %v", err)
	}
	if _, ok := getT(t, b, "k"); ok {
		t.Error("the new volume has the old key")
	}
	closeT(t, b)

	// A volume whose metadata was removed is not served empty.
	walsNow, _ := filepath.Glob(filepath.Join(dir, walPrefix+"*"))
	for _, w := range walsNow {
		if err := os.Rename(w, w+".away"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := openP(vfsbackend.FormatForce); !errors.Is(err, vfsbackend.ErrDamaged) {
		t.Fatalf("a volume without its WAL: %v", err)
	}
	for _, w := range walsNow {
		if err := os.Rename(w+".away", w); err != nil {
			t.Fatal(err)
		}
	}

	// Something that is not a volume is never formatted over.
	other := filepath.Join(parent, "other")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "precious.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(vfsbackend.Options{Path: other, Format: vfsbackend.FormatForce}); err == nil || !strings.Contains(err.Error(), "not a proxyfs volume") {
		t.Fatalf("FormatForce over other files: %v", err)
	}

	// A volume from before VOLUME files is recognised by its WAL.
	if err := os.Remove(filepath.Join(dir, volumeFileName)); err != nil {
		t.Fatal(err)
	}
	b, err = openP(vfsbackend.FormatNever)
	if err != nil {
		t.Fatalf("FormatNever on a volume without VOLUME: %v", err)
	}
	closeT(t, b)
	if _, err := os.Stat(filepath.Join(dir, volumeFileName)); err != nil {
		t.Errorf("VOLUME not written for an old volume: %v", err)
	}
}

// TestReadOnlyWritesNothing: a read-only open (the check) of a volume
// with a torn tail and with damage changes no byte, and changes fail with
// EROFS.
func TestReadOnlyWritesNothing(t *testing.T) {
	dir := t.TempDir()
	b := openT(t, dir, tuning{})
	for i := range 20 {
		commitT(t, b, putOp(fmt.Sprintf("k%02d", i), "v"))
	}
	closeT(t, b)
	wal := activeWAL(t, dir)
	f, err := os.OpenFile(wal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{50, 0, 0, 0, 9}) // a torn tail
	f.Close()
	before := dirContent(t, dir)
	ro, err := Open(vfsbackend.Options{Path: dir, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open with a torn tail: %v", err)
	}
	if v, ok := getT(t, ro, "k19"); !ok || v != "v" {
		t.Errorf("k19 = %q %v", v, ok)
	}
	if err := ro.Commit(context.Background(), &vfsbackend.Batch{Ops: []vfsbackend.Op{putOp("x", "y")}}); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Commit read-only: %v", err)
	}
	if err := ro.WriteData(context.Background(), 5, []byte("x"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("WriteData read-only: %v", err)
	}
	closeT(t, ro)
	if after := dirContent(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("read-only open changed the volume")
	}

	// Damage in the middle: refused read-only and read-write alike.
	flipByte(t, wal, int64(len(walMagic)+recHeaderSize+2))
	before = dirContent(t, dir)
	for _, o := range []vfsbackend.Options{{Path: dir, ReadOnly: true}, {Path: dir}} {
		if _, err := Open(o); !errors.Is(err, vfsbackend.ErrDamaged) || !strings.Contains(err.Error(), "-repair") {
			t.Errorf("open %+v of a damaged WAL: %v", o, err)
		}
	}
	if after := dirContent(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused opens changed the volume")
	}
	b, err = Open(vfsbackend.Options{Path: dir, Repair: true})
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if _, ok := getT(t, b, "k19"); ok {
		t.Errorf("records behind the damage survived the repair")
	}
	closeT(t, b)
	saved, _ := filepath.Glob(wal + ".damaged-*")
	if len(saved) != 1 {
		t.Errorf("saved aside: %v", saved)
	}
}

// dirContent returns every file's name and content under dir.
func dirContent(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestHealthDeletedDirectory: the directory deleted under an open volume
// fails it: flushes and commits return EIO.
func TestHealthDeletedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	b := openT(t, dir, tuning{})
	defer b.Close()
	commitT(t, b, putOp("a", "b"))
	if err := b.Health(); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := b.SyncData(context.Background(), 7); !errors.Is(err, syscall.EIO) {
		t.Errorf("SyncData after rm -rf: %v", err)
	}
	if err := b.Commit(context.Background(), &vfsbackend.Batch{Ops: []vfsbackend.Op{putOp("c", "d")}}); !errors.Is(err, syscall.EIO) {
		t.Errorf("Commit after the failure: %v", err)
	}
	if err := b.Health(); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Health: %v", err)
	}
}
