// Package volume opens, checks, formats and closes proxyfsd's volumes: a
// storage engine (package vfsbackend) instrumented for the metrics, the
// inode.FS on it, the volume's device number derived from its identity,
// and the per-volume policy of its configuration (read_only, root_squash
// and the anonymous ids). The daemon opens its volumes here before it
// serves them, and -check, -repair and -format use the same code.
package volume

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/lock"
	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Volume is one open volume. Its fields are set by Open and not changed
// afterwards.
type Volume struct {
	// Name is the volume's configured name.
	Name string
	// Dev is the volume's stat dev and statvfs fsid, derived from its
	// identity (see Dev).
	Dev uint64
	// FS is the volume's filesystem.
	FS *inode.FS
	// ReadOnly refuses every change by a client (EROFS).
	ReadOnly bool
	// RootSquash makes uid 0 and gid 0 act as Anon.
	RootSquash bool
	// Anon is the identity root acts as under RootSquash.
	Anon inode.Caller
	// LockStore, if not nil, is where the engine shares byte-range and
	// flock locks with the other gateways that serve the volume: the
	// server then wraps its lock manager in lock.NewShared.
	LockStore lock.Store

	be        vfsbackend.Backend
	health    func() error // nil: the engine cannot tell
	formatted bool
	// sweepStop ends the orphan sweep of a shared volume (nil: none).
	sweepStop func()
	// recoveryStop ends the data recovery of a read-write open if it is
	// still running, and waits for it (nil: none).
	recoveryStop func()
}

// Mode is how Open opens a volume.
type Mode struct {
	// Format says whether a volume may be created (vfsbackend.FormatNever
	// opens existing volumes only).
	Format vfsbackend.FormatPolicy
	// ReadOnly opens the volume writing nothing, not even to recover from
	// a crash (for Check).
	ReadOnly bool
	// Repair allows the recovery that drops acknowledged changes (log
	// records behind damage, saved aside first).
	Repair bool
}

// Options are what Open needs beyond the volume's configuration.
type Options struct {
	// Logger receives the volume's logs; nil means none.
	Logger *zap.Logger
	// Metrics instruments the engine; nil means none.
	Metrics *metrics.Metrics
}

// healthChecker is implemented by engines that can tell when their
// storage went away under them (the local engine: a deleted or unmounted
// volume directory).
type healthChecker interface {
	Health() error
}

// formatReporter is implemented by engines that can say whether Open
// formatted a new volume.
type formatReporter interface {
	Formatted() bool
}

// Open opens the volume vc describes.
func Open(ctx context.Context, vc conf.Volume, mode Mode, opts Options) (*Volume, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	vlog := log.With(zap.String("volume", vc.Name))
	m := opts.Metrics
	raw, err := vfsbackend.Open(vc.Engine, vfsbackend.Options{
		Path:               vc.Path,
		SyncInterval:       vc.SyncInterval,
		CapacityBytes:      vc.CapacityBytes,
		InlineBytes:        vc.InlineBytes,
		MetadataCacheBytes: vc.MetadataCacheBytes,
		Remote:             vc.Remote,
		Logger:             vlog,
		Format:             mode.Format,
		ReadOnly:           mode.ReadOnly,
		Repair:             mode.Repair,
		Observe:            m.EngineObserver(vc.Name),
	})
	if err != nil {
		return nil, fmt.Errorf("volume %q: open %s engine at %s: %w", vc.Name, vc.Engine, where(vc), err)
	}
	be := m.WrapBackend(vc.Name, raw)
	fs, err := inode.Open(ctx, be, inode.Options{Logger: vlog, CapacityBytes: vc.CapacityBytes, ReadOnly: mode.ReadOnly,
		DeferRecovery: !mode.Repair}) // a repair checks the volume right after: recover first
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("volume %q: %w", vc.Name, err)
	}
	v := &Volume{Name: vc.Name, Dev: Dev(fs.VolumeID(), vc.Name), FS: fs, be: be,
		ReadOnly: vc.ReadOnly, RootSquash: vc.RootSquash, Anon: inode.Caller{UID: vc.AnonUID, GID: vc.AnonGID}}
	if hc, ok := raw.(healthChecker); ok {
		v.health = hc.Health
	}
	if fr, ok := raw.(formatReporter); ok {
		v.formatted = fr.Formatted()
	}
	if ls, ok := raw.(lock.Store); ok && fs.Shared() && !mode.ReadOnly {
		v.LockStore = ls
	}
	if !mode.ReadOnly && !mode.Repair {
		v.startRecovery(vlog)
	}
	vlog.Info("volume ready", zap.String("engine", vc.Engine), zap.String("path", where(vc)),
		zap.String("volume_id", fmt.Sprintf("%x", fs.VolumeID())))
	return v, nil
}

// startRecovery runs inode.FS.RecoverData in the background: it lists
// every data object, which takes time in proportion to the files that
// have data, so the volume serves meanwhile (what it removes can never be
// seen: see RecoverData). Close stops it.
func (v *Volume) startRecovery(log *zap.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		err := v.FS.RecoverData(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			log.Info("data recovery stopped by close; the next open runs it again")
		case err != nil:
			log.Error("data recovery failed; the next open runs it again", zap.Error(err))
		default:
			log.Info("data recovery done", zap.Duration("took", time.Since(start)))
		}
	}()
	v.recoveryStop = func() { cancel(); <-done }
}

// where says where a volume is stored, for messages.
func where(vc conf.Volume) string {
	if vc.Engine == "etcdswift" {
		if vc.Remote.ObjectStore == "s3" {
			return fmt.Sprintf("etcd %v prefix %q, S3 bucket %q at %s", vc.Remote.EtcdEndpoints, vc.Remote.EtcdPrefix, vc.Remote.S3Bucket, vc.Remote.S3Endpoint)
		}
		return fmt.Sprintf("etcd %v prefix %q, Swift container %q", vc.Remote.EtcdEndpoints, vc.Remote.EtcdPrefix, vc.Remote.SwiftContainer)
	}
	return vc.Path
}

// OpenAll opens every volume of cfg for service: a volume that does not
// exist yet is formatted only if its configuration sets auto_format and
// the engine finds no sign that one existed there before. On error the
// volumes already opened are closed.
func OpenAll(ctx context.Context, cfg *conf.Config, opts Options) ([]*Volume, error) {
	var vols []*Volume
	for _, vc := range cfg.Volumes {
		mode := Mode{Format: vfsbackend.FormatNever}
		if vc.AutoFormat {
			mode.Format = vfsbackend.FormatIfNew
		}
		v, err := Open(ctx, vc, mode, opts)
		if err != nil {
			for _, o := range vols {
				o.Close()
			}
			return nil, err
		}
		v.startSweep(cfg.Server.ReclaimGrace, opts.Logger)
		vols = append(vols, v)
	}
	return vols, nil
}

// Health reports whether the volume's storage is still there (nil when
// the engine cannot tell).
func (v *Volume) Health() error {
	if v.health == nil {
		return nil
	}
	return v.health()
}

// Formatted says whether Open formatted a new volume.
func (v *Volume) Formatted() bool { return v.formatted }

// Usage reports the volume's space and inode use for the metrics.
func (v *Volume) Usage() (metrics.VolumeUsage, error) {
	st, err := v.FS.StatFS(context.Background())
	if err != nil {
		return metrics.VolumeUsage{}, err
	}
	return metrics.VolumeUsage{
		SizeBytes:  st.Blocks * st.BlockSize,
		FreeBytes:  st.BlocksAvail * st.BlockSize,
		Inodes:     st.Files - st.FilesFree,
		FreeInodes: st.FilesFree,
	}, nil
}

// Sync makes every acknowledged change of the volume durable.
func (v *Volume) Sync(ctx context.Context) error { return v.FS.Sync(ctx) }

// Close closes the volume's engine. It does not sync first (see Sync).
func (v *Volume) Close() error {
	if v.recoveryStop != nil {
		v.recoveryStop()
	}
	if v.sweepStop != nil {
		v.sweepStop()
	}
	return v.be.Close()
}

// startSweep has a volume that several gateways serve free, every so
// often, the unlinked files that a gateway which died had open, once its
// clients had grace to reopen them through this one (inode.SweepOrphans).
func (v *Volume) startSweep(grace time.Duration, log *zap.Logger) {
	if !v.FS.Shared() {
		return
	}
	if log == nil {
		log = zap.NewNop()
	}
	every := max(grace/2, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := v.FS.SweepOrphans(ctx, grace)
			if err != nil && ctx.Err() == nil {
				log.Warn("sweep orphans of gone gateways", zap.String("volume", v.Name), zap.Error(err))
			}
			if n > 0 {
				log.Info("freed unlinked files that a gone gateway had open", zap.String("volume", v.Name), zap.Int("freed", n))
			}
		}
	}()
	v.sweepStop = func() { cancel(); <-done }
}

// Dev derives a volume's stat dev and statvfs fsid from its identity, so
// that two volumes never share one, even with the same name on two
// daemons. A volume without an identity (opened read-only before it got
// one) falls back to its name.
func Dev(id [16]byte, name string) uint64 {
	h := fnv.New64a()
	if id == ([16]byte{}) {
		h.Write([]byte(name))
	} else {
		h.Write(id[:])
	}
	dev := h.Sum64() & mount.MaxID
	if dev == 0 {
		dev = 1
	}
	return dev
}
