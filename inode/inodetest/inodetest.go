// Package inodetest helps tests build an inode.FS and check it.
package inodetest

import (
	"context"
	"sync"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// Clock is a fake clock for inode.Options.Now: every call returns a time
// one nanosecond later than the previous one, so tests can tell whether a
// call touched a timestamp.
type Clock struct {
	mu  sync.Mutex
	now inode.Timespec
}

// NewClock returns a clock starting at a fixed instant.
func NewClock() *Clock { return &Clock{now: inode.Timespec{Sec: 1_700_000_000, Nsec: 999_999_990}} }

// Now returns the next instant.
func (c *Clock) Now() inode.Timespec {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now.Nsec++
	if c.now.Nsec == 1_000_000_000 {
		c.now.Sec++
		c.now.Nsec = 0
	}
	return c.now
}

// New returns an FS on a fresh memory engine with a fake clock. At cleanup
// it runs MustCheck.
func New(t testing.TB) (*inode.FS, vfsbackend.Backend) {
	t.Helper()
	be := mem.New(vfsbackend.Options{})
	fs, err := inode.Open(context.Background(), be, inode.Options{Now: NewClock().Now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { MustCheck(t, fs) })
	return fs, be
}

// MustCheck fails the test if fs.Check finds any problem.
func MustCheck(t testing.TB, fs *inode.FS) {
	t.Helper()
	probs, err := fs.Check(context.Background())
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, p := range probs {
		t.Errorf("check: %s", p)
	}
}
