// Command scale grows one volume of the local engine to many files through
// a real proxyfsd and measures, at each decade of files (10k, 100k, 1M,
// ...), what a growing share feels: create, lookup and get_stat rates
// (beside their rates on the empty volume, as a ratio), the daemon's
// memory (RSS from /proc, Go heap from its /metrics), bytes on disk per
// file, the time from a kill -9 to ready again, and the time and peak
// memory of proxyfsd -check. Memory is shown as RSS(anonymous RSS) in MiB:
// the difference is file pages mapped, such as the local engine's index,
// which the kernel reclaims under pressure. It is make bench-scale:
//
//	go run ./bench/scale -proxyfsd bin/proxyfsd -n 1000000
//
// Files are empty and spread over -dirs directories with typical names;
// -clients goroutines each use their own connections. The daemon is
// started with its own configuration in a fresh directory (-dir, removed
// at the end unless -keep). Any error stops the run with exit status 1.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

var (
	bin      = flag.String("proxyfsd", "bin/proxyfsd", "proxyfsd binary")
	nFiles   = flag.Int("n", 1000000, "files to create")
	clients  = flag.Int("clients", 4, "client goroutines, each with its own connections")
	nDirs    = flag.Int("dirs", 10, "directories the files are spread over")
	sample   = flag.Int("sample", 20000, "operations timed per rate at each decade")
	dataDir  = flag.String("dir", "", "directory for the daemon's files (default: a new one under $TMPDIR)")
	keep     = flag.Bool("keep", false, "keep -dir at the end")
	doCheck  = flag.Bool("check", true, "time proxyfsd -check at each decade")
	restart  = flag.Bool("restart", true, "kill -9 and restart the daemon at each decade, timing it")
	cache    = flag.Int64("metadata-cache", 0, "metadata_cache_bytes of the volume (0: not set, the daemon's default)")
	extraVol = flag.String("volume-extra", "", "more lines for the volume's configuration")
	logLevel = flag.String("log-level", "warn", "the daemon's log level (its log is proxyfsd.log in -dir)")
)

// Typical names: a departmental share.
var dirs = []struct{ name, pattern string }{
	{"Photos", "IMG_%08d.JPG"},
	{"Invoices", "Invoice-2024-%08d.pdf"},
	{"Reports", "quarterly report %08d (final).docx"},
	{"Music", "Track %08d - Unknown Artist.mp3"},
	{"Scans", "scan%08d.tif"},
	{"Mail", "message-%08d.eml"},
	{"Projects", "design_v%08d.psd"},
	{"Data", "measurements_%08d.csv"},
	{"Backups", "backup-%08d.tar.gz"},
	{"Notes", "Meeting notes %08d.txt"},
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// bench is one run: the daemon, the clients and what was created.
type bench struct {
	dir, cfg, sock string
	d              *daemon
	mounts         []*client.Mount
	conns          []*client.Client
	dirIno         []uint64
	inos           []uint64 // inode of file i
	count          int      // files created
}

func name(i int) (int, string) {
	d := i % *nDirs
	return d, fmt.Sprintf(dirs[d%len(dirs)].pattern, i)
}

func run() error {
	if *nDirs < 1 || *nDirs > len(dirs) || *clients < 1 || *nFiles < 1 || *sample < 1 {
		return errors.New("bad -dirs, -clients, -n or -sample")
	}
	dir := *dataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "proxyfs-scale-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	b := &bench{dir: dir, cfg: filepath.Join(dir, "proxyfsd.toml"), sock: filepath.Join(dir, "proxyfsd.sock"), inos: make([]uint64, *nFiles+*sample*16)}
	cfg := fmt.Sprintf("[server]\ntcp = \"\"\nunix = %q\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = %q\n\n"+
		"[[volume]]\nname = \"scale\"\nengine = \"local\"\npath = %q\nauto_format = true\n",
		b.sock, *logLevel, filepath.Join(dir, "vol"))
	if *cache > 0 {
		cfg += fmt.Sprintf("metadata_cache_bytes = %d\n", *cache)
	}
	if *extraVol != "" {
		cfg += *extraVol + "\n"
	}
	if err := os.WriteFile(b.cfg, []byte(cfg), 0o644); err != nil {
		return err
	}
	if _, err := b.start(); err != nil {
		return err
	}
	defer func() { b.disconnect(); b.d.kill() }()
	ctx := context.Background()
	root := b.mounts[0]
	for i := range *nDirs {
		st, err := root.MkdirPath(ctx, "/"+dirs[i].name, 0o755)
		if err != nil {
			return err
		}
		b.dirIno = append(b.dirIno, st.Ino)
	}

	fmt.Printf("proxyfsd %s, %d files in %d directories, %d clients, %d operations per rate; volume in %s\n",
		*bin, *nFiles, *nDirs, *clients, *sample, dir)
	fmt.Printf("%10s %19s %19s %19s %9s %8s %7s %9s %9s %9s %9s\n", "files", "create/s (x empty)", "lookup/s (x empty)",
		"getstat/s (x empty)", "RSS(anon)", "heap MiB", "B/file", "restart s", "RSS rst", "check s", "check MiB")
	var base [3]float64
	row := func(label string, rates [3]float64) error {
		rss, anon, heap, err := b.d.memory()
		if err != nil {
			return err
		}
		disk, err := diskBytes(filepath.Join(dir, "vol"))
		if err != nil {
			return err
		}
		cells := []string{}
		for k, r := range rates {
			cells = append(cells, fmt.Sprintf("%9.0f (%5.2f)", r, r/base[k]))
		}
		restartS, rssAfter, checkS, checkMiB := "-", "-", "-", "-"
		if *restart || *doCheck {
			b.disconnect()
			b.d.kill()
			if *doCheck {
				took, maxRSS, maxAnon, err := b.check()
				if err != nil {
					return err
				}
				checkS, checkMiB = fmt.Sprintf("%.2f", took.Seconds()), fmt.Sprintf("%.0f(%.0f)", float64(maxRSS)/(1<<20), float64(maxAnon)/(1<<20))
			}
			took, err := b.start()
			if err != nil {
				return err
			}
			if err := b.verify(ctx); err != nil {
				return err
			}
			r, a, _, err := b.d.memory()
			if err != nil {
				return err
			}
			restartS, rssAfter = fmt.Sprintf("%.2f", took.Seconds()), fmt.Sprintf("%.0f(%.0f)", float64(r)/(1<<20), float64(a)/(1<<20))
		}
		fmt.Printf("%10s %s %s %s %9s %8.0f %7.0f %9s %9s %9s %9s\n", label, cells[0], cells[1], cells[2],
			fmt.Sprintf("%.0f(%.0f)", float64(rss)/(1<<20), float64(anon)/(1<<20)), float64(heap)/(1<<20), float64(disk)/float64(b.count), restartS, rssAfter, checkS, checkMiB)
		return nil
	}

	// The empty volume: the baseline.
	rates, err := b.measure(ctx)
	if err != nil {
		return err
	}
	base = rates
	if err := row("empty", rates); err != nil {
		return err
	}
	start := time.Now()
	for decade := 10000; ; decade *= 10 {
		target := min(decade, *nFiles)
		if err := b.create(ctx, target); err != nil {
			return err
		}
		if rates, err = b.measure(ctx); err != nil {
			return err
		}
		if err := row(strconv.Itoa(target), rates); err != nil {
			return err
		}
		if target == *nFiles {
			break
		}
	}
	fmt.Printf("%d files in %v\n", b.count, time.Since(start).Round(time.Second))
	return nil
}

// create makes files until there are target of them.
func (b *bench) create(ctx context.Context, target int) error {
	if b.count >= target {
		return nil
	}
	var next atomic.Int64
	next.Store(int64(b.count))
	err := b.parallel(func(m *client.Mount) error {
		for {
			i := int(next.Add(1) - 1)
			if i >= target {
				return nil
			}
			d, n := name(i)
			st, err := m.Create(ctx, b.dirIno[d], n, 0o644)
			if err != nil {
				return fmt.Errorf("create %q: %w", n, err)
			}
			b.inos[i] = st.Ino
		}
	})
	b.count = target
	return err
}

// measure times sample creates (which stay), then sample lookups and
// get_stats of random existing files, and returns the three rates.
func (b *bench) measure(ctx context.Context) ([3]float64, error) {
	var rates [3]float64
	t := time.Now()
	if err := b.create(ctx, b.count+*sample); err != nil {
		return rates, err
	}
	rates[0] = float64(*sample) / time.Since(t).Seconds()
	for k, op := range []func(m *client.Mount, i int) error{
		func(m *client.Mount, i int) error {
			d, n := name(i)
			ino, err := m.Lookup(ctx, b.dirIno[d], n)
			if err == nil && ino != b.inos[i] {
				err = fmt.Errorf("lookup %q: inode %d, created as %d", n, ino, b.inos[i])
			}
			return err
		},
		func(m *client.Mount, i int) error {
			st, err := m.GetStat(ctx, b.inos[i])
			if err == nil && st.Ino != b.inos[i] {
				err = fmt.Errorf("get_stat %d: inode %d", b.inos[i], st.Ino)
			}
			return err
		},
	} {
		var left atomic.Int64
		left.Store(int64(*sample))
		count := b.count
		t := time.Now()
		err := b.parallel(func(m *client.Mount) error {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for left.Add(-1) >= 0 {
				if err := op(m, rng.IntN(count)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return rates, err
		}
		rates[k+1] = float64(*sample) / time.Since(t).Seconds()
	}
	return rates, nil
}

// parallel runs fn on every client's mount at once and returns the first
// error.
func (b *bench) parallel(fn func(m *client.Mount) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(b.mounts))
	for _, m := range b.mounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(m); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// verify checks, after a restart, that the last files created are there.
func (b *bench) verify(ctx context.Context) error {
	for i := max(0, b.count-100); i < b.count; i++ {
		d, n := name(i)
		ino, err := b.mounts[0].Lookup(ctx, b.dirIno[d], n)
		if err != nil || ino != b.inos[i] {
			return fmt.Errorf("after a restart: lookup %q: %d, %v, want %d", n, ino, err, b.inos[i])
		}
	}
	return nil
}

// start starts the daemon, connects the clients and returns the time from
// the start to the first answered get_stat.
func (b *bench) start() (time.Duration, error) {
	t := time.Now()
	d, err := startDaemon(b.cfg, filepath.Join(b.dir, "proxyfsd.log"))
	if err != nil {
		return 0, err
	}
	b.d = d
	ctx := context.Background()
	for range *clients {
		c, err := client.Dial(ctx, b.sock, client.WithConns(1, 1))
		if err != nil {
			return 0, err
		}
		m, err := c.Mount(ctx, "scale", client.MountOptions{User: "scale", UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
		if err != nil {
			_ = c.Close()
			return 0, err
		}
		b.conns, b.mounts = append(b.conns, c), append(b.mounts, m)
	}
	if _, err := b.mounts[0].GetStat(ctx, b.mounts[0].RootInode()); err != nil {
		return 0, err
	}
	return time.Since(t), nil
}

func (b *bench) disconnect() {
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.conns, b.mounts = nil, nil
}

// check runs proxyfsd -check on the stopped daemon's volume and returns
// its time, peak RSS (file pages included: the index's mmap) and peak
// anonymous RSS (sampled every 50 ms).
func (b *bench) check() (took time.Duration, maxRSS, maxAnon int64, err error) {
	t := time.Now()
	cmd := exec.Command(*bin, "-config", b.cfg, "-check")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if _, a, err := procMemory(cmd.Process.Pid); err == nil {
				maxAnon = max(maxAnon, a)
			}
		}
	}
	took = time.Since(t)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("proxyfsd -check: %v:\n%s", err, out.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, 0, errors.New("no rusage")
	}
	return took, ru.Maxrss << 10, maxAnon, nil
}

// procMemory returns a process's resident set and its anonymous part.
func procMemory(pid int) (rss, anon int64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "RssAnon:":
			anon = kb << 10
		}
	}
	return rss, anon, nil
}

// daemon is a running proxyfsd.
type daemon struct {
	cmd     *exec.Cmd
	metrics string
	done    chan struct{}
}

func startDaemon(cfg, logPath string) (*daemon, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(*bin, "-config", cfg)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "proxyfsd ready ") {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { _ = cmd.Wait(); close(d.done) }()
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[2:] {
			if k, v, _ := strings.Cut(f, "="); k == "metrics" {
				d.metrics = v
			}
		}
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("proxyfsd exited before it was ready; see %s", logPath)
	case <-time.After(10 * time.Minute):
		d.kill()
		return nil, errors.New("proxyfsd not ready after 10 minutes")
	}
}

// kill stops the daemon with SIGKILL and waits for it.
func (d *daemon) kill() {
	if d == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// memory returns the daemon's resident set and its anonymous part
// (/proc), and its Go heap in use (its /metrics).
func (d *daemon) memory() (rss, anon, heap int64, err error) {
	if rss, anon, err = procMemory(d.cmd.Process.Pid); err != nil {
		return 0, 0, 0, err
	}
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, 0, err
			}
			heap = int64(f)
		}
	}
	return rss, anon, heap, sc.Err()
}

// diskBytes is the space the files under dir take (allocated blocks).
func diskBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n, err
}
