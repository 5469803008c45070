package vfsbackend

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultInlineBytes is the inline size of a volume whose config does not
// set inline_bytes; MaxInlineBytes is the largest accepted.
const (
	DefaultInlineBytes = 4096
	MaxInlineBytes     = 64 << 10
	// DefaultMetadataCacheBytes is a disk engine's metadata memory when
	// Options.MetadataCacheBytes is zero.
	DefaultMetadataCacheBytes = 256 << 20
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
	// see package local), 0..MaxInlineBytes. Zero means never, as the
	// volume key inline_bytes = 0 does: a caller that wants the default
	// passes DefaultInlineBytes.
	InlineBytes int
	// MetadataCacheBytes bounds the memory a disk engine holds metadata in
	// (the local engine: the recent commits not yet written to its
	// on-disk index); zero means DefaultMetadataCacheBytes.
	MetadataCacheBytes int64
	// Logger receives the engine's logs. Nil means no logs.
	Logger *zap.Logger
	// Format says whether Open may create a new volume when the store
	// holds none. The zero value, FormatNever, opens existing volumes
	// only, so that a deleted directory or an unmounted disk is an error
	// rather than a new, empty volume. Engines without persistent state
	// (memory) ignore it.
	Format FormatPolicy
	// ReadOnly opens the volume for inspection (the consistency check):
	// the engine writes nothing at all to its store, not even to recover
	// from a crash, and every change fails with EROFS.
	ReadOnly bool
	// Repair allows recovery that drops acknowledged data to make the
	// volume usable again, such as intact log records behind damage in the
	// middle of the log. The engine saves what it drops aside first and
	// logs it. Without it, such damage makes Open fail with an error that
	// wraps ErrDamaged.
	Repair bool
	// Remote configures engines whose store is a network service (the
	// etcdswift engine); other engines ignore it.
	Remote RemoteOptions
	// Observe, if set, is called after each operation the engine runs on
	// its own rather than for a caller (the local engine's periodic
	// sync, as op "sync", and its background checkpoints, as op
	// "checkpoint"), with its start and outcome: the metrics wrapper sees
	// only the calls made through it.
	Observe func(op string, start time.Time, err error)
}

// RemoteOptions locate a volume kept in etcd (metadata) and an object
// store (file data): OpenStack Swift through its native API, or any S3
// API (Amazon S3, Swift's s3api, Ceph RGW, MinIO).
type RemoteOptions struct {
	// EtcdEndpoints are the etcd cluster's client URLs
	// (http://host:2379, or https://host:2379 for TLS).
	EtcdEndpoints []string
	// EtcdPrefix is the key prefix under which the volume's keys live;
	// every gateway serving the volume uses the same one.
	EtcdPrefix string
	// EtcdTLSCA is a PEM file of the CAs that etcd's server certificates
	// are checked against (empty: the system's). EtcdTLSCert and
	// EtcdTLSKey are a client certificate and its key, for an etcd that
	// requires them (--client-cert-auth). Any of them makes the client
	// speak TLS, as does an https endpoint.
	EtcdTLSCA, EtcdTLSCert, EtcdTLSKey string
	// EtcdUser and EtcdPassword authenticate to an etcd with
	// authentication enabled (empty: none).
	EtcdUser, EtcdPassword string
	// ObjectStore is where file data goes: "swift" (the default when
	// empty) or "s3".
	ObjectStore string
	// SwiftAuthURL, SwiftUser and SwiftKey authenticate to Swift (v1
	// auth such as tempauth: X-Auth-User/X-Auth-Key; v2/v3 Keystone URLs
	// are recognised by their path).
	SwiftAuthURL string
	SwiftUser    string
	SwiftKey     string
	// SwiftContainer is the container holding the volume's data objects.
	SwiftContainer string
	// SwiftTLSCA is a PEM file of the CAs that an https Swift's
	// certificate is checked against (empty: the system's).
	SwiftTLSCA string
	// S3Endpoint is the S3 service's URL (https://s3.amazonaws.com,
	// http://127.0.0.1:9000, ...); S3Region its region (empty: us-east-1);
	// S3AccessKey and S3SecretKey the credentials (AWS signature v4);
	// S3Bucket the bucket holding the volume's data objects; S3TLSCA a PEM
	// file of the CAs its certificate is checked against (empty: the
	// system's).
	S3Endpoint, S3Region, S3AccessKey, S3SecretKey, S3Bucket, S3TLSCA string
	// ChunkBytes is the size of the pieces a data object is stored in
	// (one object each in the object store) when a volume is formatted; zero means the
	// engine's default. An existing volume keeps the size it was
	// formatted with.
	ChunkBytes int
}

// FormatPolicy is Options.Format.
type FormatPolicy int

const (
	// FormatNever opens an existing volume only; a store that holds none
	// is an error wrapping ErrNoVolume.
	FormatNever FormatPolicy = iota
	// FormatIfNew formats a volume when the store is new (absent or
	// empty) and the engine finds no sign that a volume was ever formatted
	// there. It is the first-start convenience of a configuration.
	FormatIfNew
	// FormatForce formats a volume when the store holds none, even if one
	// was formatted there before (the operator asked: proxyfsd -format). It
	// never formats over an existing volume, nor a store holding anything
	// else.
	FormatForce
)

// ErrNoVolume is wrapped by Open's error when the store holds no volume
// and Options.Format did not allow creating one.
var ErrNoVolume = errors.New("no volume here")

// ErrDamaged is wrapped by Open's error when the volume is damaged in a
// way that recovery would lose acknowledged changes to fix; Options.Repair
// allows that.
var ErrDamaged = errors.New("volume damaged")

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
