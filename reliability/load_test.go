package reliability

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// peakRSS returns the VmHWM (peak resident set) of process pid, in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// TestLoad runs PROXYFS_LOAD_CONNS clients (each with its own JSON-RPC
// and binary connection) doing mixed operations for PROXYFS_LOAD_SECONDS,
// and requires zero errors, a bounded daemon memory, and prints latency
// percentiles.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	clients := envInt("PROXYFS_LOAD_CONNS", 500)
	dur := time.Duration(envInt("PROXYFS_LOAD_SECONDS", 5)) * time.Second
	d := daemontest.Start(t, daemontest.Options{LogLevel: "warn", MaxConnections: 4 * clients})
	ctx := context.Background()

	type result struct {
		lat  map[string][]time.Duration
		ops  int
		errs []error
	}
	results := make([]result, clients)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	ready.Add(clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			res.lat = map[string][]time.Duration{}
			fail := func(err error) { res.errs = append(res.errs, err) }
			addr := d.TCPAddr
			if i%2 == 1 {
				addr = d.UnixPath
			}
			c, err := client.Dial(ctx, addr, client.WithConns(1, 1))
			if err != nil {
				fail(err)
				ready.Done()
				return
			}
			defer c.Close()
			// As root: a new volume's root directory is root's.
			m, err := c.Mount(ctx, "default", client.MountOptions{User: "load"})
			if err != nil {
				fail(err)
				ready.Done()
				return
			}
			dir, err := m.MkdirPath(ctx, fmt.Sprintf("/c%d", i), 0o755)
			ready.Done()
			if err != nil {
				fail(err)
				return
			}
			<-start
			timed := func(op string, f func() error) bool {
				t0 := time.Now()
				err := f()
				res.lat[op] = append(res.lat[op], time.Since(t0))
				res.ops++
				if err != nil {
					fail(fmt.Errorf("%s: %w", op, err))
					return false
				}
				return true
			}
			buf := make([]byte, 4096)
			deadline := time.Now().Add(dur)
			for n := 0; time.Now().Before(deadline); n++ {
				name := fmt.Sprintf("f%d", n)
				var st client.Stat
				ok := timed("create", func() (err error) { st, err = m.Create(ctx, dir.Ino, name, 0o644); return })
				ok = ok && timed("write", func() error { _, err := m.Write(ctx, st.Ino, buf, 0); return err })
				ok = ok && timed("read", func() error { _, err := m.Read(ctx, st.Ino, buf, 0); return err })
				ok = ok && timed("lookup", func() error { _, err := m.Lookup(ctx, dir.Ino, name); return err })
				ok = ok && timed("get_stat", func() error { _, err := m.GetStat(ctx, st.Ino); return err })
				ok = ok && timed("readdir_plus", func() error { _, _, err := m.ReadDirPlus(ctx, dir.Ino, -1, 64); return err })
				ok = ok && timed("rename", func() error { return m.Rename(ctx, dir.Ino, name, dir.Ino, name+"x") })
				ok = ok && timed("unlink", func() error { return m.Unlink(ctx, dir.Ino, name+"x") })
				if !ok {
					return
				}
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)

	all := map[string][]time.Duration{}
	total, nerr := 0, 0
	for _, r := range results {
		total += r.ops
		for _, err := range r.errs {
			if nerr < 10 {
				t.Errorf("client error: %v", err)
			}
			nerr++
		}
		for op, l := range r.lat {
			all[op] = append(all[op], l...)
		}
	}
	t.Logf("load: %d clients (%d connections), %v, %d operations (%.0f ops/s), %d errors",
		clients, 2*clients, elapsed.Round(time.Millisecond), total, float64(total)/elapsed.Seconds(), nerr)
	ops := make([]string, 0, len(all))
	for op := range all {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		l := all[op]
		slices.Sort(l)
		t.Logf("  %-13s n=%-7d p50=%-10v p99=%-10v max=%v", op, len(l),
			l[len(l)/2].Round(time.Microsecond), l[len(l)*99/100].Round(time.Microsecond), l[len(l)-1].Round(time.Microsecond))
	}
	if pid := d.Pid(); pid > 0 {
		rss, err := peakRSS(pid)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("daemon peak RSS: %d MiB", rss>>20)
		// The race detector multiplies memory use; 2 GiB is far above
		// what the daemon needs and far below unbounded growth.
		if rss > 2<<30 {
			t.Errorf("daemon peak RSS %d MiB exceeds 2 GiB", rss>>20)
		}
	}
	if total == 0 {
		t.Fatal("no operations ran")
	}
	d.Check(t)
}
