package lock

import (
	"fmt"
	"sync"
	"syscall"
)

// accountShard holds the accounts of some mounts.
type accountShard struct {
	mu     sync.Mutex
	mounts map[uint64]*account
}

// account counts one mount's locks, for the limits and to find its files
// on release.
type account struct {
	n      int           // locks held by the mount's owners
	owners map[Owner]int // locks held, by owner
	files  map[Key]int   // locks held, by file
}

func (m *Manager) accountShard(mount uint64) *accountShard {
	return &m.accounts[mount%nShards]
}

// charge adds delta (which may be negative) to o's count of locks on k.
// A positive delta that would take o or its mount over a limit changes
// nothing and returns ENOLCK.
func (m *Manager) charge(k Key, o Owner, delta int) error {
	if delta == 0 {
		return nil
	}
	as := m.accountShard(o.Mount)
	as.mu.Lock()
	defer as.mu.Unlock()
	a := as.mounts[o.Mount]
	if a == nil {
		if delta < 0 {
			// A bug in the accounting; never crash the daemon for it.
			return fmt.Errorf("lock: accounting: negative charge on the empty account of mount %d: %w", o.Mount, syscall.EIO)
		}
		a = &account{owners: map[Owner]int{}, files: map[Key]int{}}
		as.mounts[o.Mount] = a
	}
	if delta > 0 {
		if m.maxOwner >= 0 && a.owners[o]+delta > m.maxOwner {
			m.stats.limited.Add(1)
			return fmt.Errorf("lock: owner holds %d locks (max %d): %w", a.owners[o], m.maxOwner, syscall.ENOLCK)
		}
		if m.maxMount >= 0 && a.n+delta > m.maxMount {
			m.stats.limited.Add(1)
			return fmt.Errorf("lock: mount holds %d locks (max %d): %w", a.n, m.maxMount, syscall.ENOLCK)
		}
	}
	a.n += delta
	if a.owners[o] += delta; a.owners[o] == 0 {
		delete(a.owners, o)
	}
	if a.files[k] += delta; a.files[k] == 0 {
		delete(a.files, k)
	}
	if a.n == 0 {
		delete(as.mounts, o.Mount)
	}
	return nil
}

// filesOf returns the files on which the mount holds locks.
func (m *Manager) filesOf(mount uint64) []Key {
	as := m.accountShard(mount)
	as.mu.Lock()
	defer as.mu.Unlock()
	a := as.mounts[mount]
	if a == nil {
		return nil
	}
	keys := make([]Key, 0, len(a.files))
	for k := range a.files {
		keys = append(keys, k)
	}
	return keys
}

// Held returns the number of locks the owner holds (POSIX ranges and
// flock locks, on every file).
func (m *Manager) Held(o Owner) int {
	as := m.accountShard(o.Mount)
	as.mu.Lock()
	defer as.mu.Unlock()
	if a := as.mounts[o.Mount]; a != nil {
		return a.owners[o]
	}
	return 0
}

// HeldByMount returns the number of locks the mount's owners hold.
func (m *Manager) HeldByMount(mount uint64) int {
	as := m.accountShard(mount)
	as.mu.Lock()
	defer as.mu.Unlock()
	if a := as.mounts[mount]; a != nil {
		return a.n
	}
	return 0
}
