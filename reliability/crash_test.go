package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func dialMount(t *testing.T, addr string) (*client.Client, *client.Mount) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	// As root: a new volume's root directory is root's.
	m, err := c.Mount(ctx, "default", client.MountOptions{User: "crash"})
	if err != nil {
		c.Close()
		t.Fatalf("mount: %v", err)
	}
	return c, m
}

// TestCrashCycles runs a mixed workload from several goroutines, kills
// proxyfsd with SIGKILL at a random moment, runs the fsck on what the
// crash left, restarts the daemon, and checks that every acknowledged
// change is there and nothing whose removal was acknowledged came back.
func TestCrashCycles(t *testing.T) {
	cycles := envInt("PROXYFS_CRASH_CYCLES", 50)
	const workers = 4
	// The smallest metadata cache: the local engine checkpoints its
	// overlay to its index every few dozen changes, so that kills land
	// before, during and after checkpoints.
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info",
		Volumes: []daemontest.Volume{{Name: "default", Extra: "metadata_cache_bytes = 65536"}}})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	c, m := dialMount(t, d.TCPAddr)
	ctx := context.Background()
	trees := make([]*tree, workers)
	for i := range trees {
		st, err := m.MkdirPath(ctx, fmt.Sprintf("/w%d", i), 0o755)
		if err != nil {
			t.Fatal(err)
		}
		trees[i] = newTree(fmt.Sprintf("/w%d", i), st.Ino)
	}
	c.Close()

	var totalAcked, totalChecked, totalUncertain int
	var lost []string
	for cycle := 0; cycle < cycles && !t.Failed(); cycle++ {
		c, m := dialMount(t, d.TCPAddr)
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for i, tr := range trees {
			r := rand.New(rand.NewPCG(seed, uint64(cycle*workers+i+2)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					err := tr.step(wctx, m, r)
					if errors.Is(err, errStop) || wctx.Err() != nil {
						return
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		d.Kill()
		stop()
		wg.Wait()
		c.Close()
		close(errs)
		for err := range errs {
			t.Errorf("cycle %d: %v", cycle, err)
		}
		d.Check(t) // the fsck, on what the crash left
		d.Restart()

		c, m = dialMount(t, d.TCPAddr)
		for _, tr := range trees {
			totalAcked += tr.acked
			totalUncertain += len(tr.uncertain)
			checked, l, err := tr.verify(ctx, m)
			if err != nil {
				t.Fatalf("cycle %d: verify: %v", cycle, err)
			}
			totalChecked += checked
			lost = append(lost, l...)
			if err := tr.reload(ctx, m); err != nil {
				t.Fatalf("cycle %d: reload: %v", cycle, err)
			}
		}
		c.Close()
	}
	d.Check(t)
	t.Logf("crash cycles: %d, operations acknowledged and verified: %d, facts checked: %d, in flight at the kill (either outcome accepted): %d, lost: %d",
		cycles, totalAcked, totalChecked, totalUncertain, len(lost))
	for _, l := range lost {
		t.Errorf("lost: %s", l)
	}
	if totalAcked < cycles {
		t.Errorf("only %d operations acknowledged in %d cycles: the workload did not run", totalAcked, cycles)
	}
	t.Logf("checkpoints: %d", strings.Count(d.Logs(), "checkpoint: metadata written to the index"))
}
