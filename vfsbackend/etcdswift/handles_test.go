package etcdswift_test

// Open files shared between gateways (issue 18, phase 2).

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

func startGatewayGrace(t *testing.T, r vfsbackend.RemoteOptions, grace time.Duration) *daemontest.Daemon {
	t.Helper()
	return daemontest.Start(t, daemontest.Options{
		LogLevel:     "info",
		ReclaimGrace: grace,
		Volumes:      []daemontest.Volume{{Name: "default", Engine: "etcdswift", Extra: volumeTOML(r)}},
	})
}

func readIno(t *testing.T, m *client.Mount, ino uint64, want []byte) {
	t.Helper()
	got := make([]byte, len(want)+10)
	n, err := m.Read(ctx, ino, got, 0)
	if err != nil || !bytes.Equal(got[:n], want) {
		t.Fatalf("read inode %d: %d bytes (want %d), %v", ino, n, len(want), err)
	}
}

// TestDaemonOrphanAcrossGateways: a file open through gateway a and
// unlinked through gateway b stays (b does not free it, neither at the
// unlink nor when its own reclaim grace ends after a restart) until a
// closes it; and when a is killed with such a file open, b frees it once
// a's etcd lease has expired and the grace for a's clients to reopen it
// elsewhere has passed.
func TestDaemonOrphanAcrossGateways(t *testing.T) {
	const grace = time.Second
	r := servers.Remote(uniqueName(t), 64<<10)
	a := startGatewayGrace(t, r, grace)
	b := startGatewayGrace(t, r, grace)
	ma, mb := mountRoot(t, a), mountRoot(t, b)

	data := randBytes(100<<10, 3)
	st := writeFile(t, ma, "f", data)
	h, _, err := ma.Open(ctx, st.Ino, client.OpenReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.UnlinkPath(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if got, err := mb.GetStat(ctx, st.Ino); err != nil || got.Nlink != 0 {
		t.Fatalf("after the unlink through b: %+v, %v; want an orphan (nlink 0)", got, err)
	}
	b.Restart() // its grace ends with nobody reopening the file through b
	mb = mountRoot(t, b)
	time.Sleep(3 * grace)
	readIno(t, ma, st.Ino, data)
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.GetStat(ctx, st.Ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("stat after the last close: %v, want ENOENT (freed)", err)
	}

	// A gateway killed with an unlinked file open.
	st2 := writeFile(t, ma, "g", data[:5000])
	if _, _, err := ma.Open(ctx, st2.Ino, client.OpenReadOnly); err != nil {
		t.Fatal(err)
	}
	if err := mb.UnlinkPath(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * grace) // b's sweeps: a is alive and has it open
	if _, err := mb.GetStat(ctx, st2.Ino); err != nil {
		t.Fatalf("b freed a file a has open: %v", err)
	}
	a.Kill()
	killed := time.Now()
	for {
		_, err := mb.GetStat(ctx, st2.Ino)
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(killed) > etcdswift.LeaseTTL+10*grace+10*time.Second {
			t.Fatalf("the orphan of the killed gateway is still there %v later", time.Since(killed))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := time.Since(killed); d < etcdswift.LeaseTTL-2*time.Second {
		t.Errorf("freed %v after the kill, before the lease (%v) can have expired", d, etcdswift.LeaseTTL)
	}
	t.Logf("the killed gateway's orphan was freed %v after the kill", time.Since(killed).Round(time.Second))
	b.Check(t)
}

// uniqueName names a volume of its own for each run of a test (-count).
func uniqueName(t *testing.T) string {
	return fmt.Sprint(t.Name(), "-", time.Now().UnixNano())
}
