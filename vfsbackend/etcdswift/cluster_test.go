package etcdswift_test

// Failures of the services under a running workload: one member of a
// 3-member etcd cluster killed and restarted, the Swift object server
// killed and restarted.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift/etcdswifttest"
)

// workload creates and writes files through a gateway until stopped,
// remembering what was acknowledged and when calls failed.
type workload struct {
	mu    sync.Mutex
	files map[string][]byte // acknowledged: created and written
	oks   []time.Time
	errs  []workErr
	stop  chan struct{}
	wg    sync.WaitGroup
}

type workErr struct {
	at  time.Time
	err error
}

func startWorkload(t *testing.T, d *daemontest.Daemon, workers int) *workload {
	w := &workload{files: map[string][]byte{}, stop: make(chan struct{})}
	for g := range workers {
		m := mountRoot(t, d)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				p := fmt.Sprintf("w%d-%d", g, n)
				data := randBytes(1000+n%5000, uint64(g*100000+n))
				st, err := m.CreatePath(ctx, p, 0o644)
				if err == nil {
					_, err = m.Write(ctx, st.Ino, data, 0)
				}
				w.mu.Lock()
				if err != nil {
					w.errs = append(w.errs, workErr{time.Now(), fmt.Errorf("%s: %w", p, err)})
				} else {
					w.files[p] = data
					w.oks = append(w.oks, time.Now())
				}
				w.mu.Unlock()
				if err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return w
}

func (w *workload) end() {
	close(w.stop)
	w.wg.Wait()
}

// between counts the successes and the failures in [from, to).
func (w *workload) between(from, to time.Time) (oks int, errs []workErr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.oks {
		if !at.Before(from) && at.Before(to) {
			oks++
		}
	}
	for _, e := range w.errs {
		if !e.at.Before(from) && e.at.Before(to) {
			errs = append(errs, e)
		}
	}
	return oks, errs
}

// TestDaemonServiceFailures: a gateway on a 3-member etcd cluster keeps
// serving while one member is killed (-9) and later restarted, and while
// Swift's object server is killed and restarted (calls wait, then go on);
// nothing acknowledged is lost, and proxyfsd -check is clean.
func TestDaemonServiceFailures(t *testing.T) {
	srv, err := etcdswifttest.StartWith(etcdswifttest.Options{EtcdMembers: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	if len(srv.EtcdEndpoints) != 3 {
		t.Fatalf("etcd endpoints %v, want 3 members", srv.EtcdEndpoints)
	}
	d := startGateway(t, srv.Remote(t.Name(), 64<<10))
	w := startWorkload(t, d, 3)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.end()
		}
	}()
	pause := func() { time.Sleep(2 * time.Second) }
	// progress waits until a file is written after since (at most 60s,
	// the engine's ObjectStoreWait).
	progress := func(what string, since time.Time) {
		t.Helper()
		for {
			if oks, _ := w.between(since, time.Now()); oks > 0 {
				t.Logf("%s: writing again %v later", what, time.Since(since).Round(100*time.Millisecond))
				return
			}
			if time.Since(since) > time.Minute {
				t.Fatalf("%s: nothing written for a minute", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// One etcd member dies, the cluster keeps its quorum.
	pause()
	killed := time.Now()
	if err := srv.Kill("etcd1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second)
	restarted := time.Now()
	if err := srv.Restart("etcd1"); err != nil {
		t.Fatal(err)
	}
	progress("etcd member restarted", restarted)
	pause()
	oks, errs := w.between(killed, restarted)
	t.Logf("etcd member down %v: %d files written, %d calls failed", restarted.Sub(killed).Round(time.Second), oks, len(errs))
	for _, e := range errs {
		t.Logf("  %v after the kill: %v", e.at.Sub(killed).Round(time.Millisecond), e.err)
		// A call in flight to the dead member may fail (its outcome is
		// unknown, as with a lost connection), and so may a commit made
		// while the survivors elect a new leader (etcd's request timeout
		// is 7 s on a loaded machine); later ones must not.
		if e.at.Sub(killed) > 8*time.Second {
			t.Errorf("a call failed %v after the member's death: %v", e.at.Sub(killed), e.err)
		}
	}
	if oks == 0 {
		t.Error("nothing was written while one etcd member of three was down")
	}

	// Swift's object server dies and comes back: calls wait for it.
	killed = time.Now()
	if err := srv.Kill("swift-object"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	restarted = time.Now()
	if err := srv.Restart("swift-object"); err != nil {
		t.Fatal(err)
	}
	progress("Swift object server restarted", restarted)
	pause()
	oks, errs = w.between(killed, time.Now())
	t.Logf("Swift object server down %v: %d files written during and after, %d calls failed", restarted.Sub(killed).Round(time.Second), oks, len(errs))
	for _, e := range errs {
		t.Errorf("a call failed %v after the object server's death: %v", e.at.Sub(killed), e.err)
	}
	w.end()

	m := mountRoot(t, d)
	for p, data := range w.files {
		wantFile(t, m, p, data)
	}
	t.Logf("%d acknowledged files all there", len(w.files))
	d.Check(t)
}
