package metrics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// WrapBackend returns be, the engine of the named volume, with every
// operation timed and its failures counted. With a nil m it returns be
// unchanged.
func (m *Metrics) WrapBackend(volume string, be vfsbackend.Backend) vfsbackend.Backend {
	if m == nil {
		return be
	}
	return &instrumented{Backend: be, m: m, volume: volume}
}

// EngineObserver returns the function an engine calls for the operations
// it runs on its own (vfsbackend.Options.Observe: the periodic sync, the
// local engine's checkpoints), so
// that they are timed as the wrapped ones are; nil with a nil m.
func (m *Metrics) EngineObserver(volume string) func(op string, start time.Time, err error) {
	if m == nil {
		return nil
	}
	return func(op string, start time.Time, err error) { m.engineOp(volume, op, start, err) }
}

type instrumented struct {
	vfsbackend.Backend
	m      *Metrics
	volume string
}

func (b *instrumented) Get(ctx context.Context, key []byte) ([]byte, error) {
	t := time.Now()
	v, err := b.Backend.Get(ctx, key)
	if errors.Is(err, vfsbackend.ErrNotFound) {
		b.m.engineOp(b.volume, "get", t, nil) // a missing key is an answer, not a failure
	} else {
		b.m.engineOp(b.volume, "get", t, err)
	}
	return v, err
}

func (b *instrumented) Scan(ctx context.Context, prefix, start []byte, fn func(k, v []byte) bool) error {
	t := time.Now()
	err := b.Backend.Scan(ctx, prefix, start, fn)
	b.m.engineOp(b.volume, "scan", t, err)
	return err
}

func (b *instrumented) Commit(ctx context.Context, batch *vfsbackend.Batch) error {
	t := time.Now()
	err := b.Backend.Commit(ctx, batch)
	merr := err
	if errors.Is(err, vfsbackend.ErrConflict) {
		merr = nil // lost an optimistic race: the caller starts again
	}
	b.m.engineOp(b.volume, "commit", t, merr)
	return err
}

func (b *instrumented) ReadData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) (int, error) {
	t := time.Now()
	n, err := b.Backend.ReadData(ctx, ino, p, off)
	b.m.engineOp(b.volume, "read_data", t, err)
	return n, err
}

// DataFile passes vfsbackend.FileData through, timed as read_data (what
// it stands in for). An ErrUnsupported answer (no data files, or data
// kept inline) is not an operation: the caller reads with ReadData, which
// is timed.
func (b *instrumented) DataFile(ctx context.Context, ino vfsbackend.Ino) (*os.File, func(), error) {
	fd, ok := b.Backend.(vfsbackend.FileData)
	if !ok {
		return nil, nil, fmt.Errorf("engine has no data files: %w", errors.ErrUnsupported)
	}
	t := time.Now()
	f, release, err := fd.DataFile(ctx, ino)
	if errors.Is(err, errors.ErrUnsupported) {
		return f, release, err
	}
	b.m.engineOp(b.volume, "read_data", t, err)
	return f, release, err
}

func (b *instrumented) WriteData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) error {
	t := time.Now()
	err := b.Backend.WriteData(ctx, ino, p, off)
	b.m.engineOp(b.volume, "write_data", t, err)
	return err
}

func (b *instrumented) TruncateData(ctx context.Context, ino vfsbackend.Ino, size int64) error {
	t := time.Now()
	err := b.Backend.TruncateData(ctx, ino, size)
	b.m.engineOp(b.volume, "truncate_data", t, err)
	return err
}

func (b *instrumented) DeleteData(ctx context.Context, ino vfsbackend.Ino) error {
	t := time.Now()
	err := b.Backend.DeleteData(ctx, ino)
	b.m.engineOp(b.volume, "delete_data", t, err)
	return err
}

func (b *instrumented) SyncData(ctx context.Context, ino vfsbackend.Ino) error {
	t := time.Now()
	err := b.Backend.SyncData(ctx, ino)
	b.m.engineOp(b.volume, "sync_data", t, err)
	return err
}

func (b *instrumented) Sync(ctx context.Context) error {
	t := time.Now()
	err := b.Backend.Sync(ctx)
	b.m.engineOp(b.volume, "sync", t, err)
	return err
}

// VolumeUsage is what RegisterVolume exports for a volume.
type VolumeUsage struct {
	SizeBytes, FreeBytes uint64
	Inodes, FreeInodes   uint64
}

// RegisterVolume exports a volume's inode and space usage, read from
// usage at scrape time, as gauges labelled with the volume's name. Names
// must be unique.
func (m *Metrics) RegisterVolume(name string, usage func() (VolumeUsage, error)) error {
	if m == nil {
		return nil
	}
	m.volumes.mu.Lock()
	defer m.volumes.mu.Unlock()
	if _, dup := m.volumes.usage[name]; dup {
		return fmt.Errorf("metrics: volume %q registered twice", name)
	}
	m.volumes.usage[name] = usage
	return nil
}

var (
	descBytesTotal = prometheus.NewDesc("proxyfs_volume_size_bytes",
		"Capacity of the volume's storage.", []string{"volume"}, nil)
	descBytesFree = prometheus.NewDesc("proxyfs_volume_free_bytes",
		"Space the volume can still use (statvfs f_bavail: what is left for it, not the filesystem's reserve).", []string{"volume"}, nil)
	descInodes = prometheus.NewDesc("proxyfs_volume_inodes",
		"Inodes in use in the volume.", []string{"volume"}, nil)
	descInodesFree = prometheus.NewDesc("proxyfs_volume_inodes_free",
		"Inodes the volume can still create.", []string{"volume"}, nil)
)

// volumeCollector reports every registered volume's usage.
type volumeCollector struct {
	mu    sync.Mutex
	usage map[string]func() (VolumeUsage, error)
}

func (c *volumeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBytesTotal
	ch <- descBytesFree
	ch <- descInodes
	ch <- descInodesFree
}

func (c *volumeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, usage := range c.usage {
		u, err := usage()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descBytesTotal, fmt.Errorf("volume %q: %w", name, err))
			continue
		}
		ch <- prometheus.MustNewConstMetric(descBytesTotal, prometheus.GaugeValue, float64(u.SizeBytes), name)
		ch <- prometheus.MustNewConstMetric(descBytesFree, prometheus.GaugeValue, float64(u.FreeBytes), name)
		ch <- prometheus.MustNewConstMetric(descInodes, prometheus.GaugeValue, float64(u.Inodes), name)
		ch <- prometheus.MustNewConstMetric(descInodesFree, prometheus.GaugeValue, float64(u.FreeInodes), name)
	}
}
