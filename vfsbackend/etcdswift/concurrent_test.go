package etcdswift_test

// Two gateways changing one volume at the same time (issue 18, phase 2).

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// where a worker's own name is: directory index and inode.
type where struct {
	dir int
	ino uint64
}

// nsWorker changes the namespace through one mount. Its own names
// ("w<id>-<n>") no other worker touches, so it knows exactly what must
// be left of them; the shared names ("s<n>") every worker fights over.
type nsWorker struct {
	id   int
	m    *client.Mount
	dirs []uint64
	rnd  *rand.Rand
	next int
	own  map[string]where // name -> where; the name is unique across dirs
	// links counts the names of each of the worker's inodes.
	links map[uint64]int
	ops   map[string]int
}

func (w *nsWorker) newName() string {
	w.next++
	return fmt.Sprintf("w%d-%d", w.id, w.next)
}

func (w *nsWorker) pick() (string, where, bool) {
	if len(w.own) == 0 {
		return "", where{}, false
	}
	i := w.rnd.IntN(len(w.own))
	for n, at := range w.own {
		if i == 0 {
			return n, at, true
		}
		i--
	}
	panic("unreachable")
}

func (w *nsWorker) drop(ino uint64) {
	if w.links[ino]--; w.links[ino] == 0 {
		delete(w.links, ino)
	}
}

// step makes one change; any error but the ones the shared names may
// cause is a failure.
func (w *nsWorker) step() error {
	d := w.rnd.IntN(len(w.dirs))
	switch op := w.rnd.IntN(10); {
	case op < 3 || len(w.own) < 3: // create
		name := w.newName()
		st, err := w.m.Create(ctx, w.dirs[d], name, 0o644)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		w.own[name] = where{d, st.Ino}
		w.links[st.Ino]++
		w.ops["create"]++
	case op == 3: // link
		src, at, _ := w.pick()
		name := w.newName()
		if err := w.m.Link(ctx, w.dirs[d], name, at.ino); err != nil {
			return fmt.Errorf("link %s to %s: %w", name, src, err)
		}
		w.own[name] = where{d, at.ino}
		w.links[at.ino]++
		w.ops["link"]++
	case op == 4: // rename to a new name, maybe in the other directory
		src, at, _ := w.pick()
		name := w.newName()
		if err := w.m.Rename(ctx, w.dirs[at.dir], src, w.dirs[d], name); err != nil {
			return fmt.Errorf("rename %s to %s: %w", src, name, err)
		}
		delete(w.own, src)
		w.own[name] = where{d, at.ino}
		w.ops["rename"]++
	case op == 5: // rename over another of its own names
		src, at, _ := w.pick()
		dst, dat, _ := w.pick()
		if err := w.m.Rename(ctx, w.dirs[at.dir], src, w.dirs[dat.dir], dst); err != nil {
			return fmt.Errorf("rename %s over %s: %w", src, dst, err)
		}
		if at.ino != dat.ino { // else: another link of the same inode, nothing happens
			delete(w.own, src)
			w.own[dst] = where{dat.dir, at.ino}
			w.drop(dat.ino)
		}
		w.ops["rename-over"]++
	case op == 6: // unlink
		name, at, _ := w.pick()
		if err := w.m.Unlink(ctx, w.dirs[at.dir], name); err != nil {
			return fmt.Errorf("unlink %s: %w", name, err)
		}
		delete(w.own, name)
		w.drop(at.ino)
		w.ops["unlink"]++
	default: // the shared names
		a, b := "s"+strconv.Itoa(w.rnd.IntN(8)), "s"+strconv.Itoa(w.rnd.IntN(8))
		d2 := w.rnd.IntN(len(w.dirs))
		var err error
		switch w.rnd.IntN(4) {
		case 0:
			_, err = w.m.Create(ctx, w.dirs[d], a, 0o644)
		case 1:
			err = w.m.Rename(ctx, w.dirs[d], a, w.dirs[d2], b)
		case 2:
			err = w.m.Unlink(ctx, w.dirs[d], a)
		case 3:
			var ino uint64
			if ino, err = w.m.Lookup(ctx, w.dirs[d], a); err == nil {
				err = w.m.Link(ctx, w.dirs[d2], b, ino)
			}
		}
		if err != nil && !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("shared names %s, %s: %w", a, b, err)
		}
		w.ops["shared"]++
	}
	return nil
}

// TestDaemonTwoGatewaysConcurrent: workers on two gateways of one volume
// create, link, rename and unlink in the same two directories at the same
// time. Afterwards every name a worker was told it made is there, once,
// naming the right inode, nothing it removed is, link counts are right,
// names are unique in each directory, and proxyfsd -check is clean.
func TestDaemonTwoGatewaysConcurrent(t *testing.T) {
	steps := 40
	if os.Getenv("PROXYFS_SCALEOUT_FULL") == "1" {
		steps = 200
	}
	r := servers.Remote(uniqueName(t), 64<<10)
	gws := []*daemontest.Daemon{startGateway(t, r), startGateway(t, r)}
	m0 := mountRoot(t, gws[0])
	var dirs []uint64
	for _, n := range []string{"x", "y"} {
		st, err := m0.Mkdir(ctx, m0.RootInode(), n, 0o777)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, st.Ino)
	}
	const perGateway = 4
	var workers []*nsWorker
	for i := range 2 * perGateway {
		workers = append(workers, &nsWorker{
			id: i, m: mountRoot(t, gws[i%2]), dirs: dirs,
			rnd: rand.New(rand.NewPCG(uint64(i), 18)),
			own: map[string]where{}, links: map[uint64]int{}, ops: map[string]int{},
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range steps {
				if err := w.step(); err != nil {
					errs[i] = fmt.Errorf("worker %d (gateway %d): %w", w.id, w.id%2, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := map[string]int{}
	for _, w := range workers {
		for k, v := range w.ops {
			total[k] += v
		}
	}
	t.Logf("operations: %v", total)

	// What both gateways list now.
	for g, gw := range gws {
		m := mountRoot(t, gw)
		seen := map[string]where{}
		nlinks := map[uint64]int{}
		for d, dir := range dirs {
			ents, err := m.ReadDirAll(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if e.Name == "." || e.Name == ".." {
					continue
				}
				if prev, dup := seen[e.Name]; dup && prev.dir == d {
					t.Errorf("gateway %d: %q listed twice in directory %d", g, e.Name, d)
				}
				if e.Name[0] == 'w' {
					if _, dup := seen[e.Name]; dup {
						t.Errorf("gateway %d: own name %q in both directories", g, e.Name)
					}
				}
				seen[e.Name] = where{d, e.Inode}
				nlinks[e.Inode]++
			}
		}
		for _, w := range workers {
			for name, want := range w.own {
				if got, ok := seen[name]; !ok {
					t.Errorf("gateway %d: acknowledged %q (inode %d in directory %d) is missing", g, name, want.ino, want.dir)
				} else if got != want {
					t.Errorf("gateway %d: %q is inode %d in directory %d, want inode %d in %d", g, name, got.ino, got.dir, want.ino, want.dir)
				}
			}
			for ino, n := range w.links {
				if nlinks[ino] != n {
					t.Errorf("gateway %d: inode %d has %d entries, want %d", g, ino, nlinks[ino], n)
				}
				st, err := m.GetStat(ctx, ino)
				if err != nil {
					t.Errorf("gateway %d: stat %d: %v", g, ino, err)
				} else if st.Nlink != uint64(n) {
					t.Errorf("gateway %d: inode %d has nlink %d, want %d", g, ino, st.Nlink, n)
				}
			}
		}
		for name := range seen {
			if name[0] != 'w' {
				continue
			}
			var id, n int
			if _, err := fmt.Sscanf(name, "w%d-%d", &id, &n); err != nil || id >= len(workers) {
				t.Errorf("gateway %d: unexpected name %q", g, name)
			} else if _, ok := workers[id].own[name]; !ok {
				t.Errorf("gateway %d: %q was removed or renamed, yet is listed", g, name)
			}
		}
	}
	gws[1].Stop()
	gws[0].Check(t)
}
