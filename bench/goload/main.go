// Command goload drives a running proxyfsd with many Go clients doing a
// mixed workload (create, 4 KiB write and read, lookup, get_stat,
// readdir_plus, rename, unlink) and prints the operations per second.
// It is the Go-client load used for the figures in BENCHMARKS.md:
//
//	make run &                        # or any proxyfsd
//	go run ./bench/goload -addr 127.0.0.1:9450 -n 500 -d 10s
//
// Every client has its own connections (one JSON-RPC, one binary) and its
// own directory. Any error stops the run with exit status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9450", "proxyfsd address: host:port or a Unix socket path")
	volume := flag.String("volume", "default", "volume to mount")
	n := flag.Int("n", 500, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.UintVar(&mountUID, "uid", uint(os.Getuid()), "uid to mount as (it needs write permission in the volume's root; a new volume's root is root's: 0)")
	flag.UintVar(&mountGID, "gid", uint(os.Getgid()), "gid to mount as")
	flag.Parse()
	ops, err := run(*addr, *volume, *n, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goload:", err)
		os.Exit(1)
	}
	fmt.Printf("%d clients, %v: %d operations, %.0f ops/s\n", *n, *dur, ops, float64(ops)/dur.Seconds())
}

// run starts n clients for dur and returns the operations they completed,
// or the first error.
func run(addr, volume string, n int, dur time.Duration) (int64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ops atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	stamp := time.Now().UnixNano()
	deadline := time.Now().Add(dur)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(ctx, addr, volume, fmt.Sprintf("/goload-%d-%d", stamp, i), deadline, &ops); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return ops.Load(), <-errs // nil if no worker failed
}

// The identity the workers mount as (-uid, -gid).
var mountUID, mountGID uint

func worker(ctx context.Context, addr, volume, dirPath string, deadline time.Time, ops *atomic.Int64) error {
	c, err := client.Dial(ctx, addr, client.WithConns(1, 1))
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := c.Mount(ctx, volume, client.MountOptions{User: "goload", UID: uint32(mountUID), GID: uint32(mountGID)})
	if err != nil {
		return err
	}
	dir, err := m.MkdirPath(ctx, dirPath, 0o755)
	if err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
		name := fmt.Sprint("f", k)
		st, err := m.Create(ctx, dir.Ino, name, 0o644)
		if err != nil {
			return err
		}
		steps := []func() error{
			func() error { _, err := m.Write(ctx, st.Ino, buf, 0); return err },
			func() error { _, err := m.Read(ctx, st.Ino, buf, 0); return err },
			func() error { _, err := m.Lookup(ctx, dir.Ino, name); return err },
			func() error { _, err := m.GetStat(ctx, st.Ino); return err },
			func() error { _, _, err := m.ReadDirPlus(ctx, dir.Ino, -1, 64); return err },
			func() error { return m.Rename(ctx, dir.Ino, name, dir.Ino, name+"x") },
			func() error { return m.Unlink(ctx, dir.Ino, name+"x") },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				if ctx.Err() != nil {
					return nil // another worker failed first
				}
				return err
			}
		}
		ops.Add(int64(1 + len(steps)))
	}
	return nil
}
