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
// A second line per decade measures the large directories: the rate of
// lookup_ci (case-insensitive lookups of existing names spelled in the
// other case) and single-client latencies of lookup_ci and lookup, and a
// readdir_plus of the whole largest directory streamed in pages, with the
// daemon's and the bench's memory sampled while it runs.
//
// Files are empty and spread over -dirs directories with typical names;
// -clients goroutines each use their own connections. The daemon is
// started with its own configuration in a fresh directory (-dir, removed
// at the end unless -keep). Any error stops the run with exit status 1.
//
// With -reuse DIR it creates nothing and only measures the volume that a
// run with -keep -dir DIR left in DIR: it starts proxyfsd on DIR/vol with
// a configuration of its own in a new temporary directory (the volume
// read_only, which refuses every change by a client, and not formatted if
// missing), finds the directories and the number of files with lookups,
// prints the same lines, and stops the daemon with SIGTERM. The daemon
// opens the volume as any start does: after a kill -9 it replays the WAL
// and may checkpoint it into the index. With -baseline (the default) it first measures a
// fresh volume of -sample files for the ratios, as a full run's "empty"
// row:
//
//	go run ./bench/scale -proxyfsd bin/proxyfsd -clients 16 -reuse DIR
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

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
	reuse    = flag.String("reuse", "", "measure only: open the volume that a run with -keep -dir DIR left in DIR, read-only, and create nothing in it")
	baseline = flag.Bool("baseline", true, "with -reuse, first measure a fresh volume of -sample files (the empty volume's figures, for the ratios)")
	rdLimit  = flag.Int("readdir-limit", 0, "read at most this many entries of the largest directory with readdir_plus (0: all of it)")
	rdPage   = flag.Int("readdir-page", 1024, "entries asked for per readdir_plus call (the server's limit is 4096)")
	doDirs   = flag.Bool("dir-figures", true, "measure lookup_ci and readdir_plus (the second line of each decade)")
	baseN    = flag.Int("baseline-sample", 0, "with -reuse, the -sample of the fresh baseline volume (0: -sample); e.g. a long -sample on the kept volume against the usual 20 000-file baseline")
	warm     = flag.Int("warm", 0, "with -reuse, this many untimed random lookups of the kept volume first, in rounds of a million whose rates are printed (the page cache warmed as a server's is after a while)")
	pprof    = flag.Bool("pprof", false, "serve the daemon's /debug/pprof/ on its metrics address (printed on stderr)")
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
	inos           []uint64 // inode of file i; nil on a reused volume
	count          int      // files created (on a reused volume: found)

	// On a reused volume: inodes that timed lookups found (for get_stat),
	// and names that were missing (a run killed while creating leaves a
	// few gaps near its end).
	seenMu  sync.Mutex
	seen    []uint64
	missing atomic.Int64

	cpuPerOp time.Duration // the daemon's CPU time per operation of the last timed
}

func name(i int) (int, string) {
	d := i % *nDirs
	return d, fmt.Sprintf(dirs[d%len(dirs)].pattern, i)
}

// figures is what one row shows. A rate below zero was not measured.
type figures struct {
	rates [3]float64 // create, lookup, get_stat per second

	ciRate       float64          // lookup_ci per second, all clients
	ciLat, lkLat [3]time.Duration // one client: lookup_ci and lookup latency, p50, p90, p99
	rd           readdirFigures
	// The daemon's CPU time (user and system, all threads, from /proc) per
	// lookup, get_stat and lookup_ci over all clients, and per entry of
	// the readdir_plus: less sensitive than rates to other work on the
	// machine.
	cpu [4]time.Duration
	// Checkpoints that ended while the reads were measured, and their
	// time: a checkpoint competes with the reads for the CPUs.
	ckpts   int
	ckptDur time.Duration
}

// readdirFigures describes one readdir_plus of the largest directory.
type readdirFigures struct {
	entries                int
	took                   time.Duration
	anon0, anonMax         int64 // the daemon's anonymous RSS before and at most during it
	rssMax                 int64 // the daemon's RSS at most (index pages mapped included)
	heap0, heapMax         int64 // the daemon's Go heap in use before and at most
	clientHeap, clientAnon int64 // the bench's own Go heap in use and anonymous RSS, at most
}

func run() error {
	if *nDirs < 1 || *nDirs > len(dirs) || *clients < 1 || *nFiles < 1 || *sample < 1 || *rdPage < 1 || *rdLimit < 0 {
		return errors.New("bad -dirs, -clients, -n, -sample, -readdir-page or -readdir-limit")
	}
	if *reuse != "" {
		return runReuse(*reuse)
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
	b, err := newFresh(dir, *nFiles+*sample*16)
	if err != nil {
		return err
	}
	defer func() { b.disconnect(); b.d.kill() }()
	ctx := context.Background()

	fmt.Printf("proxyfsd %s, %d files in %d directories, %d clients, %d operations per rate; volume in %s\n",
		*bin, *nFiles, *nDirs, *clients, *sample, dir)
	header()
	// The empty volume: the baseline.
	base, err := b.measure(ctx)
	if err != nil {
		return err
	}
	if err := b.row("empty", base, base, true); err != nil {
		return err
	}
	start := time.Now()
	for decade := 10000; ; decade *= 10 {
		target := min(decade, *nFiles)
		if err := b.create(ctx, target); err != nil {
			return err
		}
		f, err := b.measure(ctx)
		if err != nil {
			return err
		}
		if err := b.row(strconv.Itoa(target), f, base, true); err != nil {
			return err
		}
		if target == *nFiles {
			break
		}
	}
	fmt.Printf("%d files in %v\n", b.count, time.Since(start).Round(time.Second))
	return nil
}

// newFresh writes a configuration for a new volume in dir, starts the
// daemon on it and makes the directories; inos is room for that many
// files.
func newFresh(dir string, inos int) (*bench, error) {
	b := &bench{dir: dir, cfg: filepath.Join(dir, "proxyfsd.toml"), sock: filepath.Join(dir, "proxyfsd.sock"), inos: make([]uint64, inos)}
	cfg := fmt.Sprintf("[server]\ntcp = \"\"\nunix = %q\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = %q\n\n"+
		"[[volume]]\nname = \"scale\"\nengine = \"local\"\npath = %q\nauto_format = true\n",
		b.sock, *logLevel, filepath.Join(dir, "vol"))
	if *pprof {
		cfg = strings.Replace(cfg, "[metrics]\n", "[metrics]\npprof = true\n", 1)
	}
	if *cache > 0 {
		cfg += fmt.Sprintf("metadata_cache_bytes = %d\n", *cache)
	}
	if *extraVol != "" {
		cfg += *extraVol + "\n"
	}
	if err := os.WriteFile(b.cfg, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if _, err := b.start(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	for i := range *nDirs {
		st, err := b.mounts[0].MkdirPath(ctx, "/"+dirs[i].name, 0o755)
		if err != nil {
			b.disconnect()
			b.d.kill()
			return nil, err
		}
		b.dirIno = append(b.dirIno, st.Ino)
	}
	return b, nil
}

// header prints the two header lines of the table.
func header() {
	fmt.Printf("%10s %19s %19s %19s %9s %8s %7s %9s %9s %9s %9s\n", "files", "create/s (x empty)", "lookup/s (x empty)",
		"getstat/s (x empty)", "RSS(anon)", "heap MiB", "B/file", "restart s", "RSS rst", "check s", "check MiB")
	if *doDirs {
		fmt.Printf("%10s %19s %16s %16s %9s %9s %7s %12s %9s %9s %9s\n", "", "lookupci/s (x empty)", "ci us p50/90/99", "lk us p50/90/99",
			"rd+ ents", "rd+ ent/s", "rd+ s", "d anon 0/max", "d RSS max", "d heap0/max", "bench MiB")
	}
}

// row prints f (measured on b's volume now) against the empty volume's
// base; with restartCheck (a volume that the bench grows), it then kills
// the daemon, times proxyfsd -check and a restart.
func (b *bench) row(label string, f, base figures, restartCheck bool) error {
	ctx := context.Background()
	rss, anon, heap, err := b.d.memory()
	if err != nil {
		return err
	}
	disk, err := diskBytes(filepath.Join(b.dir, "vol"))
	if err != nil {
		return err
	}
	cells := []string{}
	for k, r := range f.rates {
		cells = append(cells, rateCell(r, base.rates[k]))
	}
	restartS, rssAfter, checkS, checkMiB := "-", "-", "-", "-"
	if restartCheck && (*restart || *doCheck) {
		b.disconnect()
		b.d.kill()
		if *doCheck {
			took, maxRSS, maxAnon, err := b.check()
			if err != nil {
				return err
			}
			checkS, checkMiB = fmt.Sprintf("%.2f", took.Seconds()), fmt.Sprintf("%.0f(%.0f)", mib(maxRSS), mib(maxAnon))
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
		restartS, rssAfter = fmt.Sprintf("%.2f", took.Seconds()), fmt.Sprintf("%.0f(%.0f)", mib(r), mib(a))
	}
	fmt.Printf("%10s %s %s %s %9s %8.0f %7.0f %9s %9s %9s %9s\n", label, cells[0], cells[1], cells[2],
		fmt.Sprintf("%.0f(%.0f)", mib(rss), mib(anon)), mib(heap), float64(disk)/float64(b.count), restartS, rssAfter, checkS, checkMiB)
	if *doDirs {
		rd := f.rd
		rate := float64(rd.entries) / rd.took.Seconds()
		fmt.Printf("%10s %s %16s %16s %9d %9.0f %7.1f %12s %9.0f %9s %9s\n", "", rateCell(f.ciRate, base.ciRate), lat(f.ciLat), lat(f.lkLat),
			rd.entries, rate, rd.took.Seconds(), fmt.Sprintf("%.0f/%.0f", mib(rd.anon0), mib(rd.anonMax)), mib(rd.rssMax),
			fmt.Sprintf("%.0f/%.0f", mib(rd.heap0), mib(rd.heapMax)), fmt.Sprintf("%.0f(%.0f)", mib(rd.clientAnon), mib(rd.clientHeap)))
	}
	us := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond))
	}
	fmt.Printf("%10s daemon CPU us per lookup %s, get_stat %s, lookup_ci %s, readdir_plus entry %s; checkpoints ended meanwhile: %d (%.1f s)\n", "",
		us(f.cpu[0]), us(f.cpu[1]), us(f.cpu[2]), us(f.cpu[3]), f.ckpts, f.ckptDur.Seconds())
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// rateCell is "rate (ratio to base)", or "-" for a rate not measured.
func rateCell(r, base float64) string {
	if r < 0 {
		return fmt.Sprintf("%19s", "-")
	}
	ratio := r / base
	if base <= 0 || math.IsInf(ratio, 0) || math.IsNaN(ratio) {
		return fmt.Sprintf("%9.0f (%5s)", r, "-")
	}
	return fmt.Sprintf("%9.0f (%5.2f)", r, ratio)
}

// lat is "p50/p90/p99" in microseconds.
func lat(p [3]time.Duration) string {
	return fmt.Sprintf("%d/%d/%d", p[0].Microseconds(), p[1].Microseconds(), p[2].Microseconds())
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

// measure times sample creates (which stay; not on a reused volume), then
// sample lookups and get_stats of random existing files, then, with
// -dir-figures, sample lookup_ci spread over the clients, lookup_ci and
// lookup latencies of a single client, and a readdir_plus of the largest
// directory.
func (b *bench) measure(ctx context.Context) (f figures, err error) {
	f = figures{rates: [3]float64{-1, -1, -1}, ciRate: -1}
	if b.inos != nil {
		t := time.Now()
		if err := b.create(ctx, b.count+*sample); err != nil {
			return f, err
		}
		f.rates[0] = float64(*sample) / time.Since(t).Seconds()
	} else {
		b.seen = b.seen[:0]
		if err := b.warmUp(ctx); err != nil {
			return f, err
		}
	}
	n0, d0, err := b.d.checkpoints()
	if err != nil {
		return f, err
	}
	defer func() {
		if n1, d1, err := b.d.checkpoints(); err == nil {
			f.ckpts, f.ckptDur = n1-n0, d1-d0
		}
	}()
	if f.rates[1], _, err = b.timed(b.mounts, *sample, b.lookupOp(ctx)); err != nil {
		return f, err
	}
	f.cpu[0] = b.cpuPerOp
	if b.inos == nil && len(b.seen) == 0 {
		return f, errors.New("no lookup found its file")
	}
	if f.rates[2], _, err = b.timed(b.mounts, *sample, b.getStatOp(ctx)); err != nil {
		return f, err
	}
	f.cpu[1] = b.cpuPerOp
	if n := b.missing.Load(); n > int64(*sample)/100 {
		return f, fmt.Errorf("%d lookups of names that should exist found nothing", n)
	}
	if !*doDirs {
		return f, nil
	}
	if f.ciRate, _, err = b.timed(b.mounts, *sample, b.lookupCIOp(ctx)); err != nil {
		return f, err
	}
	f.cpu[2] = b.cpuPerOp
	one := b.mounts[:1]
	if _, f.ciLat, err = b.timed(one, max(*sample/10, 100), b.lookupCIOp(ctx)); err != nil {
		return f, err
	}
	if _, f.lkLat, err = b.timed(one, max(*sample/10, 100), b.lookupOp(ctx)); err != nil {
		return f, err
	}
	if n := b.missing.Load(); n > int64(*sample)/100 {
		return f, fmt.Errorf("%d lookups of names that should exist found nothing", n)
	}
	cpu0, err := procCPU(b.d.cmd.Process.Pid)
	if err != nil {
		return f, err
	}
	if f.rd, err = b.readdirPlus(ctx); err != nil {
		return f, err
	}
	cpu1, err := procCPU(b.d.cmd.Process.Pid)
	if f.rd.entries > 0 {
		f.cpu[3] = (cpu1 - cpu0) / time.Duration(f.rd.entries)
	}
	return f, err
}

// warmUp runs -warm random lookups of a reused volume before it is
// measured, in rounds of a million, and prints each round's rate: how
// they rise shows the page cache filling with the index.
func (b *bench) warmUp(ctx context.Context) error {
	const round = 1000000
	for done := 0; done < *warm; done += round {
		n := min(round, *warm-done)
		rate, _, err := b.timed(b.mounts, n, b.lookupOp(ctx))
		if err != nil {
			return err
		}
		fmt.Printf("warm-up: lookups %d to %d at %.0f/s, daemon CPU %.1f us each\n", done, done+n, rate, float64(b.cpuPerOp.Nanoseconds())/1000)
	}
	b.seen = b.seen[:0]
	return nil
}

// lookupOp looks a random existing file up and checks its inode.
func (b *bench) lookupOp(ctx context.Context) func(*client.Mount, *rand.Rand) error {
	return func(m *client.Mount, rng *rand.Rand) error {
		i := rng.IntN(b.count)
		d, n := name(i)
		ino, err := m.Lookup(ctx, b.dirIno[d], n)
		switch {
		case b.inos != nil:
			if err == nil && ino != b.inos[i] {
				err = fmt.Errorf("lookup %q: inode %d, created as %d", n, ino, b.inos[i])
			}
		case errors.Is(err, syscall.ENOENT):
			b.missing.Add(1)
			return nil
		case err == nil:
			b.seenMu.Lock()
			if len(b.seen) < *sample {
				b.seen = append(b.seen, ino)
			}
			b.seenMu.Unlock()
		}
		return err
	}
}

// getStatOp stats a random existing file: one the bench created, or on a
// reused volume one that a timed lookup found.
func (b *bench) getStatOp(ctx context.Context) func(*client.Mount, *rand.Rand) error {
	return func(m *client.Mount, rng *rand.Rand) error {
		var ino uint64
		if b.inos != nil {
			ino = b.inos[rng.IntN(b.count)]
		} else {
			ino = b.seen[rng.IntN(len(b.seen))]
		}
		st, err := m.GetStat(ctx, ino)
		if err == nil && st.Ino != ino {
			err = fmt.Errorf("get_stat %d: inode %d", ino, st.Ino)
		}
		return err
	}
}

// lookupCIOp looks a random existing file up with lookup_ci, its name
// spelled with every letter in the other case, and checks the real name
// and inode that come back.
func (b *bench) lookupCIOp(ctx context.Context) func(*client.Mount, *rand.Rand) error {
	return func(m *client.Mount, rng *rand.Rand) error {
		i := rng.IntN(b.count)
		d, n := name(i)
		real, st, err := m.LookupCI(ctx, b.dirIno[d], swapCase(n))
		if b.inos == nil && errors.Is(err, syscall.ENOENT) {
			b.missing.Add(1)
			return nil
		}
		switch {
		case err != nil:
			return fmt.Errorf("lookup_ci %q: %w", swapCase(n), err)
		case real != n:
			return fmt.Errorf("lookup_ci %q: %q, want %q", swapCase(n), real, n)
		case b.inos != nil && st.Ino != b.inos[i]:
			return fmt.Errorf("lookup_ci %q: inode %d, created as %d", swapCase(n), st.Ino, b.inos[i])
		}
		return nil
	}
}

// swapCase turns upper case letters into lower case and the other way
// round: every name of the bench has letters, so it never comes back
// unchanged.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsUpper(r) {
			return unicode.ToLower(r)
		}
		return unicode.ToUpper(r)
	}, s)
}

// timed runs n operations spread over mounts (each its own goroutine) and
// returns their rate and latency percentiles (50, 90, 99).
func (b *bench) timed(mounts []*client.Mount, n int, op func(*client.Mount, *rand.Rand) error) (float64, [3]time.Duration, error) {
	var pct [3]time.Duration
	var left atomic.Int64
	left.Store(int64(n))
	var mu sync.Mutex
	all := make([]time.Duration, 0, n)
	cpu0, err := procCPU(b.d.cmd.Process.Pid)
	if err != nil {
		return 0, pct, err
	}
	t := time.Now()
	err = parallel(mounts, func(m *client.Mount) error {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		lats := make([]time.Duration, 0, n/len(mounts)+1)
		defer func() { mu.Lock(); all = append(all, lats...); mu.Unlock() }()
		for left.Add(-1) >= 0 {
			s := time.Now()
			if err := op(m, rng); err != nil {
				return err
			}
			lats = append(lats, time.Since(s))
		}
		return nil
	})
	if err != nil {
		return 0, pct, err
	}
	rate := float64(n) / time.Since(t).Seconds()
	cpu1, err := procCPU(b.d.cmd.Process.Pid)
	if err != nil {
		return 0, pct, err
	}
	b.cpuPerOp = (cpu1 - cpu0) / time.Duration(n)
	slices.Sort(all)
	for k, p := range []float64{0.50, 0.90, 0.99} {
		pct[k] = all[min(len(all)-1, int(p*float64(len(all))))]
	}
	return rate, pct, nil
}

// readdirPlus reads the largest directory (the first: file i is in
// directory i % dirs) with readdir_plus, -readdir-page entries per call,
// up to -readdir-limit entries, and samples the daemon's and the bench's
// memory twice a second meanwhile. It prints its progress on stderr every
// 10 seconds.
func (b *bench) readdirPlus(ctx context.Context) (readdirFigures, error) {
	var f readdirFigures
	want := (b.count + *nDirs - 1) / *nDirs // files i < count with i % dirs == 0
	limit := want
	if *rdLimit > 0 {
		limit = min(limit, *rdLimit)
	}
	_, anon, heap, err := b.d.memory()
	if err != nil {
		return f, err
	}
	f.anon0, f.heap0, f.anonMax, f.heapMax = anon, heap, anon, heap
	var mu sync.Mutex
	sampleMem := func() {
		rss, anon, heap, err := b.d.memory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_, canon, _ := procMemory(os.Getpid())
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			f.rssMax, f.anonMax, f.heapMax = max(f.rssMax, rss), max(f.anonMax, anon), max(f.heapMax, heap)
		}
		f.clientHeap, f.clientAnon = max(f.clientHeap, int64(ms.HeapInuse)), max(f.clientAnon, canon)
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sampleMem()
			}
		}
	}()
	m := b.mounts[0]
	dirName := dirs[0].name
	t := time.Now()
	next := t.Add(10 * time.Second)
	cookie := int64(-1)
	for f.entries < limit {
		ask := limit - f.entries
		if cookie == -1 {
			ask += 2 // "." and ".."
		}
		ents, eof, err := m.ReadDirPlus(ctx, b.dirIno[0], cookie, min(*rdPage, ask))
		if err != nil {
			close(stop)
			<-sampled
			return f, fmt.Errorf("readdir_plus of /%s after %d entries: %w", dirName, f.entries, err)
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			if e.Stat == nil || e.Stat.Ino != e.Inode {
				close(stop)
				<-sampled
				return f, fmt.Errorf("readdir_plus of /%s: entry %q without its attributes", dirName, e.Name)
			}
			f.entries++
		}
		if len(ents) > 0 {
			cookie = ents[len(ents)-1].Cookie
		}
		if eof || len(ents) == 0 {
			break
		}
		if now := time.Now(); now.After(next) {
			next = now.Add(10 * time.Second)
			mu.Lock()
			fmt.Fprintf(os.Stderr, "readdir_plus /%s: %d of %d entries, %.0f/s; daemon anon RSS at most %.0f MiB, heap %.0f MiB\n",
				dirName, f.entries, limit, float64(f.entries)/now.Sub(t).Seconds(), mib(f.anonMax), mib(f.heapMax))
			mu.Unlock()
		}
	}
	f.took = time.Since(t)
	close(stop)
	<-sampled
	sampleMem()
	if f.entries > limit || (f.entries < limit && (b.inos != nil || f.entries < limit-limit/100)) {
		return f, fmt.Errorf("readdir_plus of /%s: %d entries, want %d", dirName, f.entries, limit)
	}
	return f, nil
}

// parallel runs fn on every client's mount at once and returns the first
// error.
func (b *bench) parallel(fn func(m *client.Mount) error) error {
	return parallel(b.mounts, fn)
}

func parallel(mounts []*client.Mount, fn func(m *client.Mount) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(mounts))
	for _, m := range mounts {
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

// runReuse measures the volume a kept run left in dir (see the package
// comment), after a fresh volume of -sample files with -baseline.
func runReuse(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	orig, err := os.ReadFile(filepath.Join(dir, "proxyfsd.toml"))
	if err != nil {
		return fmt.Errorf("-reuse %s: not a directory of a run with -keep: %w", dir, err)
	}
	vol := filepath.Join(dir, "vol")
	if _, err := os.Stat(vol); err != nil {
		return fmt.Errorf("-reuse %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp("", "proxyfs-scale-reuse-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The kept volume, with a configuration of our own: the original's
	// lines (cache and extra volume settings included) with our socket,
	// the volume's path made absolute, read_only and never formatted.
	r := &bench{dir: dir, cfg: filepath.Join(tmp, "proxyfsd.toml"), sock: filepath.Join(tmp, "proxyfsd.sock")}
	var cfg []string
	section := ""
	for _, l := range strings.Split(string(orig), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			section = t
		}
		k, _, _ := strings.Cut(t, "=")
		switch k = strings.TrimSpace(k); {
		case section == "[server]" && k == "unix":
			l = fmt.Sprintf("unix = %q", r.sock)
		case section == "[[volume]]" && (k == "path" || k == "auto_format" || k == "read_only"):
			continue
		case section == "[metrics]" && k == "pprof":
			continue
		}
		cfg = append(cfg, l)
		switch t {
		case "[[volume]]":
			cfg = append(cfg, fmt.Sprintf("path = %q", vol), "read_only = true", "auto_format = false")
		case "[metrics]":
			if *pprof {
				cfg = append(cfg, "pprof = true")
			}
		}
	}
	if strings.Count(string(orig), "[[volume]]") != 1 {
		return fmt.Errorf("-reuse %s: proxyfsd.toml has not one [[volume]]", dir)
	}
	if err := os.WriteFile(r.cfg, []byte(strings.Join(cfg, "\n")), 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(tmp, "proxyfsd.log")
	fmt.Fprintf(os.Stderr, "starting proxyfsd on %s (read-only; its log: %s)\n", vol, logPath)
	took, err := r.startLog(logPath)
	if err != nil {
		// The log goes with the temporary directory: show its end.
		log, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		return fmt.Errorf("%w; the end of its log:\n%s", err, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	defer func() { r.disconnect(); r.d.stop() }()
	ctx := context.Background()
	if err := r.findFiles(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ready in %.2f s; %d files in %d directories\n", took.Seconds(), r.count, *nDirs)
	fmt.Printf("proxyfsd %s, measuring %s (%d files in %d directories, read-only), %d clients, %d operations per rate\n",
		*bin, dir, r.count, *nDirs, *clients, *sample)

	base := figures{rates: [3]float64{-1, -1, -1}, ciRate: -1}
	var b *bench
	if *baseline {
		bdir := filepath.Join(tmp, "baseline")
		if err := os.Mkdir(bdir, 0o755); err != nil {
			return err
		}
		// The baseline's -sample may differ (-baseline-sample): set it
		// for the baseline's measurement only.
		kept := *sample
		if *baseN > 0 {
			*sample = *baseN
		}
		b, err = newFresh(bdir, *sample)
		if err == nil {
			defer func() { b.disconnect(); b.d.kill() }()
			base, err = b.measure(ctx)
		}
		*sample = kept
		if err != nil {
			return err
		}
	}
	header()
	if b != nil {
		if err := b.row("empty", base, base, false); err != nil {
			return err
		}
		b.disconnect()
		b.d.kill()
		b.d = nil
	}
	f, err := r.measure(ctx)
	if err != nil {
		return err
	}
	if err := r.row(strconv.Itoa(r.count), f, base, false); err != nil {
		return err
	}
	if n := r.missing.Load(); n > 0 {
		fmt.Printf("%d of the names looked up were missing\n", n)
	}
	return nil
}

// findFiles finds the bench's directories on a reused volume (so -dirs)
// and the number of files, from the first missing name on (file i exists
// for every i below the count, but for a few gaps where a killed run was
// creating).
func (b *bench) findFiles(ctx context.Context) error {
	m := b.mounts[0]
	b.dirIno = nil
	for _, d := range dirs {
		ino, err := m.Lookup(ctx, m.RootInode(), d.name)
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			return err
		}
		b.dirIno = append(b.dirIno, ino)
	}
	if len(b.dirIno) == 0 {
		return fmt.Errorf("no /%s: not a volume of bench/scale", dirs[0].name)
	}
	*nDirs = len(b.dirIno)
	exists := func(i int) (bool, error) {
		d, n := name(i)
		_, err := m.Lookup(ctx, b.dirIno[d], n)
		if errors.Is(err, syscall.ENOENT) {
			return false, nil
		}
		return err == nil, err
	}
	lo, hi := -1, 1 // file lo exists (-1: none), file hi does not
	for {
		ok, err := exists(hi - 1)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		lo, hi = hi-1, hi*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := exists(mid)
		if err != nil {
			return err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	b.count = lo + 1
	if b.count == 0 {
		return errors.New("no files")
	}
	return nil
}

// start starts the daemon, connects the clients and returns the time from
// the start to the first answered get_stat.
func (b *bench) start() (time.Duration, error) {
	return b.startLog(filepath.Join(b.dir, "proxyfsd.log"))
}

// startLog is start with the daemon's log in logPath.
func (b *bench) startLog(logPath string) (time.Duration, error) {
	t := time.Now()
	d, err := startDaemon(b.cfg, logPath)
	if err != nil {
		return 0, err
	}
	b.d = d
	if *pprof {
		fmt.Fprintf(os.Stderr, "proxyfsd pid %d: profiles at http://%s/debug/pprof/\n", d.cmd.Process.Pid, d.metrics)
	}
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

// procCPU returns the CPU time, user and system, that process pid used
// (all its threads; /proc/PID/stat counts in clock ticks, 10 ms here).
func procCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is the 3rd field of the line, utime the 14th.
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is sysconf(_SC_CLK_TCK), 100 on Linux.
const clockTicks = 100

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

// stop stops the daemon with SIGTERM (it drains calls and closes the
// volume) and waits for it, for at most 5 minutes before a SIGKILL.
func (d *daemon) stop() {
	if d == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Minute):
		fmt.Fprintln(os.Stderr, "proxyfsd did not stop 5 minutes after SIGTERM: killing it")
		d.kill()
	}
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

// checkpoints returns how many background checkpoints of the local
// engine ended, and their total time, from the daemon's /metrics (0 with a
// daemon that does not report them).
func (d *daemon) checkpoints() (n int, took time.Duration, err error) {
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		name, rest, ok := strings.Cut(l, "{")
		if !ok || !strings.Contains(rest, `op="checkpoint"`) {
			continue
		}
		_, v, _ := strings.Cut(rest, "} ")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/metrics: %q: %w", l, err)
		}
		switch name {
		case "proxyfs_engine_operation_duration_seconds_count":
			n += int(f)
		case "proxyfs_engine_operation_duration_seconds_sum":
			took += time.Duration(f * float64(time.Second))
		}
	}
	return n, took, sc.Err()
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
