package vfsbackend

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options configures an engine when it is opened. Engines ignore fields
// that do not apply to them.
type Options struct {
	// Path is the directory that holds the engine's files. Engines that
	// store on disk create it if needed. Unused by the memory engine.
	Path string
	// SyncInterval bounds how long committed metadata may stay in the page
	// cache before it is fsynced. Zero means the engine's default (1s).
	SyncInterval time.Duration
	// CapacityBytes is the size a memory engine reports to statvfs and
	// enforces (ENOSPC). Zero means 1 GiB. Unused by disk engines, which
	// report their filesystem's numbers. (A volume's configured capacity
	// is enforced above the engine, by package inode.)
	CapacityBytes uint64
	// InlineBytes is the size up to which a disk engine may keep a data
	// object in its metadata instead of in a file of its own (small files;
	// see package local). Zero means the engine's default (local: 4096);
	// a negative value means never.
	InlineBytes int
	// Logger receives the engine's logs. Nil means no logs.
	Logger *zap.Logger
}

// Factory opens an engine.
type Factory func(opts Options) (Backend, error)

var (
	registryMu sync.Mutex
	registry   = map[string]Factory{}
)

// Register makes an engine available under name. It returns an error if
// the name is empty or already taken.
func Register(name string, f Factory) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || f == nil {
		return fmt.Errorf("vfsbackend: register: empty name or nil factory")
	}
	if _, dup := registry[name]; dup {
		return fmt.Errorf("vfsbackend: register: engine %q registered twice", name)
	}
	registry[name] = f
	return nil
}

// Open opens the engine registered under name.
func Open(name string, opts Options) (Backend, error) {
	registryMu.Lock()
	f, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("vfsbackend: unknown engine %q (have %v)", name, Engines())
	}
	return f(opts)
}

// Engines returns the registered engine names, sorted.
func Engines() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
