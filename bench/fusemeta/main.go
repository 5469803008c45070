// Command fusemeta times a metadata workload in a directory: create N
// empty files, stat each, read the directory, unlink each. make bench-fuse
// runs it on a proxyfs FUSE mount and on the local disk.
//
//	fusemeta [-n 10000] [-j 4] DIR
//
// It prints one line: "files N create S stat S readdir S unlink S total S"
// (seconds). -j spreads the creates, stats and unlinks over that many
// goroutines, as a parallel build or untar would.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 10000, "files")
	j := flag.Int("j", 4, "goroutines")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: fusemeta [-n N] [-j J] DIR")
		os.Exit(2)
	}
	dir := filepath.Join(flag.Arg(0), fmt.Sprintf("fusemeta-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		fail(err)
	}
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("f%06d", i)) }
	par := func(f func(i int) error) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		for w := range *j {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < *n; i += *j {
					if err := f(i); err != nil {
						fail(err)
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(t0)
	}
	create := par(func(i int) error {
		f, err := os.OpenFile(name(i), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	})
	stat := par(func(i int) error { _, err := os.Lstat(name(i)); return err })
	t0 := time.Now()
	ents, err := os.ReadDir(dir)
	if err != nil {
		fail(err)
	}
	if len(ents) != *n {
		fail(fmt.Errorf("readdir: %d entries, want %d", len(ents), *n))
	}
	readdir := time.Since(t0)
	unlink := par(func(i int) error { return os.Remove(name(i)) })
	if err := os.Remove(dir); err != nil {
		fail(err)
	}
	total := create + stat + readdir + unlink
	fmt.Printf("files %d create %.3f stat %.3f readdir %.3f unlink %.3f total %.3f\n", *n,
		create.Seconds(), stat.Seconds(), readdir.Seconds(), unlink.Seconds(), total.Seconds())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fusemeta:", err)
	os.Exit(1)
}
