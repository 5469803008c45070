package etcdswift_test

// make bench-scaleout: the issue 18 targets, each figure beside its
// baseline measured in the same run:
//
//	PROXYFS_BENCH_SCALEOUT=1 go test ./vfsbackend/etcdswift -run TestScaleoutBench -v
//
// PROXYFS_BENCH_SECONDS sets each measurement's length (default 5).
// PROXYFS_BENCH_PPROF=FILE writes a CPU profile of the first gateway taken
// during the one-gateway creates (go tool pprof -top bin/proxyfsd FILE).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

// rate runs op from workers goroutines for d and returns operations per
// second (op gets the worker and its count so far).
func rate(t *testing.T, workers int, d time.Duration, op func(w, i int) error) float64 {
	t.Helper()
	var n atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	end := time.Now().Add(d)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				if err := op(w, i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		t.Fatal(err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}

func TestScaleoutBench(t *testing.T) {
	if os.Getenv("PROXYFS_BENCH_SCALEOUT") != "1" {
		t.Skip("set PROXYFS_BENCH_SCALEOUT=1 (make bench-scaleout)")
	}
	secs, _ := strconv.Atoi(os.Getenv("PROXYFS_BENCH_SECONDS"))
	if secs <= 0 {
		secs = 5
	}
	d := time.Duration(secs) * time.Second
	const workers = 16 // client goroutines, in all
	r := servers.Remote(t.Name()+strconv.FormatInt(time.Now().UnixNano(), 10), etcdswift.DefaultChunkBytes)
	prof := os.Getenv("PROXYFS_BENCH_PPROF")
	gw := func() *daemontest.Daemon {
		return daemontest.Start(t, daemontest.Options{
			LogLevel: "info", Metrics: prof != "", Pprof: prof != "",
			Volumes: []daemontest.Volume{{Name: "default", Engine: "etcdswift", Extra: volumeTOML(r)}},
		})
	}
	gws := []*daemontest.Daemon{gw(), gw()}
	raw, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatNever})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	// Where the CPU goes: etcd, each gateway, and this process (the
	// clients), from /proc/PID/stat.
	procs := []struct {
		name string
		pid  int
	}{{"etcd", etcdPid(t)}, {"gateway 1", gws[0].Pid()}, {"gateway 2", gws[1].Pid()}, {"clients (test)", os.Getpid()}}
	var cpuOut bytes.Buffer
	cpu := func(what string, f func() float64) float64 {
		before := make([]float64, len(procs))
		for i, p := range procs {
			before[i] = cpuSeconds(p.pid)
		}
		start := time.Now()
		n := f()
		wall := time.Since(start).Seconds()
		fmt.Fprintf(&cpuOut, "%s, %.0f /s: CPU seconds per second:", what, n)
		total := 0.0
		for i, p := range procs {
			c := (cpuSeconds(p.pid) - before[i]) / wall
			total += c
			fmt.Fprintf(&cpuOut, " %s %.2f;", p.name, c)
		}
		fmt.Fprintf(&cpuOut, " sum %.2f; etcd %.0f us per op\n", total, 1e6*(cpuSeconds(procs[0].pid)-before[0])/(n*wall))
		return n
	}

	// Baselines, from the engine's own clients (the same libraries).
	etcdRate := cpu("etcd txn, raw", func() float64 {
		return rate(t, workers, d, func(w, i int) error {
			return raw.RawEtcdPutForBench(ctx, fmt.Sprintf("w%d-%d", w, i), "v")
		})
	})
	mib := bytes.Repeat([]byte("s"), 1<<20)
	putRate := rate(t, 1, d, func(_, i int) error { return raw.RawSwiftPutForBench(ctx, fmt.Sprintf("raw/%d", i), mib) })
	if err := raw.RawSwiftPutForBench(ctx, "raw/get", mib); err != nil {
		t.Fatal(err)
	}
	getRate := rate(t, 1, d, func(_, _ int) error { return raw.RawSwiftGetForBench(ctx, "raw/get") })

	dial := func(g *daemontest.Daemon) *client.Mount {
		c, err := client.Dial(ctx, g.TCPAddr, client.WithConns(4, 4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		m, err := c.Mount(ctx, "default", client.MountOptions{User: "root"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mounts := []*client.Mount{dial(gws[0]), dial(gws[1])}
	// Each worker creates in a directory of its own: creates in one
	// directory through several gateways serialize on it (every create
	// changes the directory's record), by design.
	dirs := make([]uint64, workers)
	for w := range workers {
		st, err := mounts[0].Mkdir(ctx, mounts[0].RootInode(), fmt.Sprintf("d%d", w), 0o755)
		if err != nil {
			t.Fatal(err)
		}
		dirs[w] = st.Ino
	}
	round := 0
	creates := func(gateways int) float64 {
		round++
		return cpu(fmt.Sprintf("creates through %d gateway(s)", gateways), func() float64 {
			return rate(t, workers, d, func(w, i int) error {
				_, err := mounts[w%gateways].Create(ctx, dirs[w], fmt.Sprintf("r%d-%d", round, i), 0o644)
				return err
			})
		})
	}
	var one float64
	if prof != "" {
		done := make(chan error, 1)
		go func() { done <- fetchProfile(gws[0].MetricsAddr, prof, secs) }()
		one = creates(1)
		if err := <-done; err != nil {
			t.Error(err)
		}
	} else {
		one = creates(1)
	}
	two := creates(2)

	// Sequential data through one gateway: one writer of 1 MiB calls,
	// then one reader, against Swift's raw PUT and GET of 1 MiB objects.
	wr, rd := seqData(t, mounts[0], mounts[1], d)

	ratio := func(a, b float64) string { return fmt.Sprintf("%.2fx", a/b) }
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nscale-out bench (%v per figure, %d client goroutines for metadata; same run)\n", d, workers)
	fmt.Fprintf(&out, "| | figure | baseline (same run) | ratio | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&out, "| creates, one gateway | %.0f /s | etcd txn (one put): %.0f /s | %s | >= 0.5x |\n", one, etcdRate, ratio(one, etcdRate))
	fmt.Fprintf(&out, "| creates, two gateways | %.0f /s | creates, one gateway: %.0f /s | %s | >= 1.6x |\n", two, one, ratio(two, one))
	fmt.Fprintf(&out, "| sequential write, 1 MiB calls | %.1f MB/s | Swift PUT 1 MiB: %.1f MB/s | %s | >= 0.7x |\n", wr*1.048576, putRate*1.048576, ratio(wr, putRate))
	fmt.Fprintf(&out, "| sequential read, 1 MiB calls | %.1f MB/s | Swift GET 1 MiB: %.1f MB/s | %s | >= 0.7x |\n", rd*1.048576, getRate*1.048576, ratio(rd, getRate))
	out.Write(cpuOut.Bytes())
	t.Log(out.String())
}

// seqData measures sequential 1 MiB writes to a new file through w for d,
// then 1 MiB reads of it through r (another gateway, so that no chunk
// comes from the writer's cache) for d; calls per second of each.
func seqData(t *testing.T, w, r *client.Mount, d time.Duration) (wr, rd float64) {
	t.Helper()
	mib := bytes.Repeat([]byte("s"), 1<<20)
	st, err := w.Create(ctx, w.RootInode(), "seq", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	wr = rate(t, 1, d, func(_, i int) error {
		_, err := w.Write(ctx, st.Ino, mib, uint64(i)<<20)
		return err
	})
	size, err := w.GetStat(ctx, st.Ino)
	if err != nil {
		t.Fatal(err)
	}
	chunks := int(size.Size >> 20)
	if chunks == 0 {
		t.Fatal("nothing written")
	}
	p := make([]byte, 1<<20)
	rd = rate(t, 1, d, func(_, i int) error {
		n, err := r.Read(ctx, st.Ino, p, uint64(i%chunks)<<20)
		if err == nil && n != len(p) {
			err = fmt.Errorf("read %d bytes of chunk %d, want %d", n, i%chunks, len(p))
		}
		return err
	})
	return wr, rd
}

// cpuSeconds is the user and system CPU time pid used so far (0 if it
// cannot be read).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || pid <= 0 {
		return 0
	}
	// Fields after the command (which may hold spaces), from field 3 on.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}

// etcdPid is the pid of the test servers' etcd (0 if not found).
func etcdPid(t *testing.T) int {
	b, err := os.ReadFile(filepath.Join(servers.Dir, "run", "etcd1.pid"))
	if err != nil {
		t.Logf("etcd's pid: %v", err)
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// fetchProfile writes a CPU profile of secs seconds from a daemon's pprof.
func fetchProfile(addr, file string, secs int) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
