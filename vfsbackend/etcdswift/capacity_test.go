package etcdswift_test

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Capacity of the volumes of TestDaemonCapacityTwoGateways, and the slack
// the inode package allows each other gateway (capacity/64).
const (
	capTestBytes = 8 << 20
	capTestSlack = capTestBytes / 64
	capTestWrite = 64 << 10
)

func startCapacityGateway(t *testing.T, r vfsbackend.RemoteOptions) *daemontest.Daemon {
	t.Helper()
	return daemontest.Start(t, daemontest.Options{
		LogLevel: "info",
		Volumes:  []daemontest.Volume{{Name: "default", Engine: "etcdswift", CapacityBytes: capTestBytes, Extra: volumeTOML(r)}},
	})
}

// fillFiles appends capTestWrite bytes at a time to each file through its
// mount, in turn, until every mount gets ENOSPC, and returns how many bytes
// were written. Any other error fails the test.
func fillFiles(t *testing.T, ms []*client.Mount, inos []uint64, sizes []uint64) uint64 {
	t.Helper()
	buf := make([]byte, capTestWrite)
	full := make([]bool, len(ms))
	var wrote uint64
	for left := len(ms); left > 0; {
		for i, m := range ms {
			if full[i] {
				continue
			}
			_, err := m.Write(ctx, inos[i], buf, sizes[i])
			switch {
			case err == nil:
				sizes[i] += capTestWrite
				wrote += capTestWrite
			case errors.Is(err, syscall.ENOSPC):
				full[i] = true
				left--
			default:
				t.Fatalf("write through gateway %d: %v", i, err)
			}
		}
	}
	return wrote
}

// wantUsed checks that statvfs through every mount reports used bytes of
// the volume, rounded up to blocks, and the capacity as its size.
func wantUsed(t *testing.T, what string, ms []*client.Mount, used uint64) {
	t.Helper()
	for i, m := range ms {
		st, err := m.StatVFS(ctx)
		if err != nil {
			t.Fatalf("%s: statvfs through gateway %d: %v", what, i, err)
		}
		usedBlocks := (used + st.Frsize - 1) / st.Frsize
		if st.Blocks*st.Frsize != capTestBytes || st.Blocks-st.Bfree != min(usedBlocks, st.Blocks) || st.Bavail != st.Bfree {
			t.Errorf("%s: statvfs through gateway %d: blocks %d, free %d, avail %d of %d bytes; want %d used (%d bytes)",
				what, i, st.Blocks, st.Bfree, st.Bavail, st.Frsize, usedBlocks, used)
		}
	}
}

// TestDaemonCapacityTwoGateways: capacity_bytes holds for the volume, not
// per gateway. Writes through two gateways get ENOSPC, whichever gateway,
// once the volume's use (the sum of its files' sizes) reaches the
// capacity, give or take the slack of one gateway (capacity/64); statvfs
// through either reports the volume's use; space freed through one gateway
// (unlink, truncate) can be written through the other; and a gateway
// killed with SIGKILL and restarted (a new instance) neither loses nor
// double counts what it wrote, which -check verifies (the usage keys add
// up to the files' sizes).
func TestDaemonCapacityTwoGateways(t *testing.T) {
	r := servers.Remote(t.Name(), 256<<10)
	a := startCapacityGateway(t, r)
	b := startCapacityGateway(t, r)
	ma, mb := mountRoot(t, a), mountRoot(t, b)
	ms := []*client.Mount{ma, mb}

	sa := writeFile(t, ma, "a", nil)
	sb := writeFile(t, mb, "b", nil)
	sizes := []uint64{0, 0}
	inos := []uint64{sa.Ino, sb.Ino}
	total := fillFiles(t, ms, inos, sizes)
	// A gateway refuses only after reading the volume's use again, so the
	// volume is full to within one write; the other gateway's growth it
	// had not seen may take it past, by at most the slack.
	if total+capTestWrite <= capTestBytes || total > capTestBytes+capTestSlack {
		t.Fatalf("two gateways wrote %d bytes (%d + %d) on a volume of %d: want within (capacity - %d, capacity + %d]",
			total, sizes[0], sizes[1], capTestBytes, capTestWrite, capTestSlack)
	}
	if sizes[0] == 0 || sizes[1] == 0 {
		t.Errorf("one gateway wrote nothing: %v", sizes)
	}
	wantUsed(t, "full", ms, total)
	// Each gateway refuses, also a growth by truncate and on a new file.
	for i, m := range ms {
		if err := m.Resize(ctx, inos[i], sizes[i]+capTestWrite); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("gateway %d: grow by truncate when full: %v, want ENOSPC", i, err)
		}
	}
	st := writeFile(t, ma, "empty", nil) // creating is not growing
	if _, err := mb.Write(ctx, st.Ino, []byte("x"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("gateway b: write to a new file when full: %v, want ENOSPC", err)
	}

	// Unlink through a: b writes again, and fills the volume again.
	if err := ma.UnlinkPath(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, "after unlink", ms, sizes[1])
	freed := sizes[0]
	more := fillFiles(t, []*client.Mount{mb}, inos[1:], sizes[1:])
	if more+capTestWrite < freed {
		t.Errorf("gateway b wrote %d bytes after gateway a freed %d", more, freed)
	}
	if sizes[1]+capTestWrite <= capTestBytes || sizes[1] > capTestBytes+capTestSlack {
		t.Errorf("gateway b filled the volume to %d bytes, capacity %d", sizes[1], capTestBytes)
	}
	wantUsed(t, "full again", ms, sizes[1])

	// Truncate b's file through a: a writes again.
	half := sizes[1] / 2 / capTestWrite * capTestWrite
	if err := ma.Resize(ctx, inos[1], half); err != nil {
		t.Fatal(err)
	}
	sizes[1] = half
	wantUsed(t, "after truncate", ms, half)
	sc := writeFile(t, ma, "c", nil)
	csize := []uint64{0}
	fillFiles(t, []*client.Mount{ma}, []uint64{sc.Ino}, csize)
	if half+csize[0]+capTestWrite <= capTestBytes || half+csize[0] > capTestBytes+capTestSlack {
		t.Errorf("after truncating to %d through a, a wrote %d: volume of %d", half, csize[0], capTestBytes)
	}
	wantUsed(t, "full after truncate", ms, half+csize[0])

	// Kill a (its instance dies, and a restart is a new one), free through
	// the new instance what the old one counted, and fill again.
	a.Kill()
	a.Restart()
	ma = mountRoot(t, a)
	ms = []*client.Mount{ma, mb}
	wantUsed(t, "after kill -9 and restart", ms, half+csize[0])
	if err := ma.UnlinkPath(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, "after unlink through the restarted gateway", ms, half)
	sd := writeFile(t, ma, "d", nil)
	fillFiles(t, ms, []uint64{sd.Ino, sb.Ino}, []uint64{0, half})
	stD, err := ma.GetStatPath(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	stB, err := mb.GetStatPath(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	used := stD.Size + stB.Size
	if used+capTestWrite <= capTestBytes || used > capTestBytes+capTestSlack {
		t.Errorf("after the restart the volume filled to %d bytes (d %d, b %d), capacity %d", used, stD.Size, stB.Size, capTestBytes)
	}
	wantUsed(t, "full after the restart", ms, used)

	// -check: the usage keys of the three instances (a's dead one too)
	// add up to the files' sizes.
	b.Stop()
	a.Check(t)
}

// TestCheckUsageMismatch: -check reports usage keys that do not add up to
// the files' sizes.
func TestCheckUsageMismatch(t *testing.T) {
	r := servers.Remote(t.Name(), 256<<10)
	a := startCapacityGateway(t, r)
	ma := mountRoot(t, a)
	writeFile(t, ma, "f", make([]byte, 1000))
	a.Stop()
	b := open(t, t.Name(), 256<<10, vfsbackend.FormatNever)
	// A usage key of an instance that never was: 'u', 8 bytes of
	// instance, 1 of stripe; the count is 8 bytes big-endian.
	var batch vfsbackend.Batch
	batch.Put([]byte("u\x00\x00\x00\x00\x00\x00\x00\x07\x00"), []byte{0, 0, 0, 0, 0, 0, 0, 5})
	if err := b.Commit(ctx, &batch); err != nil {
		t.Fatal(err)
	}
	b.Close()
	code, out := a.Run(t, time.Minute, "-check")
	if code != 1 || !strings.Contains(out, "usage keys add up to 1005 bytes, the regular files' sizes to 1000") {
		t.Errorf("proxyfsd -check with a wrong usage key: exit %d\n%s", code, out)
	}
}

// TestDaemonCapacityConcurrent: two gateways, two writers each, appending
// to files of their own at the same time until ENOSPC: the volume ends
// full, past its capacity by at most the slack of one gateway, and -check
// finds the usage keys exact.
func TestDaemonCapacityConcurrent(t *testing.T) {
	r := servers.Remote(t.Name(), 256<<10)
	a := startCapacityGateway(t, r)
	b := startCapacityGateway(t, r)
	ms := []*client.Mount{mountRoot(t, a), mountRoot(t, b)}
	const writers = 4
	wrote := make([]uint64, writers)
	errs := make(chan error, writers)
	for w := range writers {
		m := ms[w%2]
		st := writeFile(t, m, fmt.Sprintf("w%d", w), nil)
		go func() {
			buf := make([]byte, capTestWrite)
			for {
				_, err := m.Write(ctx, st.Ino, buf, wrote[w])
				if errors.Is(err, syscall.ENOSPC) {
					errs <- nil
					return
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				wrote[w] += capTestWrite
			}
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var total uint64
	for _, n := range wrote {
		total += n
	}
	// A writer stops at a refusal made after reading the volume's use,
	// when that use plus its gateway's growth in flight (its other
	// writer's, counted twice at most) plus its write passed the capacity.
	if total+4*capTestWrite <= capTestBytes || total > capTestBytes+capTestSlack {
		t.Errorf("4 writers through two gateways wrote %d bytes (%v) on a volume of %d: want within (capacity - %d, capacity + %d]",
			total, wrote, capTestBytes, 4*capTestWrite, capTestSlack)
	}
	wantUsed(t, "full", ms, total)
	b.Stop()
	a.Check(t)
}

// TestDaemonCapacityUpgrade: a volume made before usage keys (here: its
// usage keys removed) gets them, counted from its files' sizes, when a
// gateway opens it read-write; the capacity then holds and -check is clean.
func TestDaemonCapacityUpgrade(t *testing.T) {
	r := servers.Remote(t.Name(), 256<<10)
	a := startCapacityGateway(t, r)
	ma := mountRoot(t, a)
	writeFile(t, ma, "f", make([]byte, 3<<20))
	a.Stop()
	be := open(t, t.Name(), 256<<10, vfsbackend.FormatNever)
	var batch vfsbackend.Batch
	for _, pfx := range []string{"u", "susage_keys"} {
		if err := be.Scan(ctx, []byte(pfx), nil, func(k, _ []byte) bool {
			batch.Delete(append([]byte(nil), k...))
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if batch.Len() < 2 {
		t.Fatalf("usage keys of the volume: %d, want the marker and at least one count", batch.Len())
	}
	if err := be.Commit(ctx, &batch); err != nil {
		t.Fatal(err)
	}
	be.Close()
	a.Restart()
	ma = mountRoot(t, a)
	wantUsed(t, "upgraded", []*client.Mount{ma}, 3<<20)
	st, err := ma.GetStatPath(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	n := fillFiles(t, []*client.Mount{ma}, []uint64{st.Ino}, []uint64{st.Size})
	if 3<<20+n+capTestWrite <= capTestBytes || 3<<20+n > capTestBytes {
		t.Errorf("after the upgrade, %d more bytes fit beside 3 MiB in a volume of %d", n, capTestBytes)
	}
	a.Check(t)
}
