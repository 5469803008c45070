package volume

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

// Check opens every volume of cfg read-only (it writes nothing, not even
// to recover from a crash), runs the consistency check on each and returns
// the problems found, each prefixed with its volume's name. A volume that
// cannot be opened (damaged, missing) is a problem too. The volumes must
// not be in use by a running daemon. Progress (each phase, the keys read,
// the time each volume took) goes to progress unless it is nil.
func Check(ctx context.Context, cfg *conf.Config, log *zap.Logger, progress io.Writer) ([]string, error) {
	return checkAll(ctx, cfg, log, Mode{ReadOnly: true}, progress)
}

// Repair opens every volume of cfg allowing the recovery that drops
// acknowledged changes (such as log records behind damage in the middle
// of the log, which the engine saves aside first), then checks each as
// Check does. Opening for service refuses such damage.
func Repair(ctx context.Context, cfg *conf.Config, log *zap.Logger, progress io.Writer) ([]string, error) {
	return checkAll(ctx, cfg, log, Mode{Repair: true}, progress)
}

func checkAll(ctx context.Context, cfg *conf.Config, log *zap.Logger, mode Mode, progress io.Writer) ([]string, error) {
	var probs []string
	for _, vc := range cfg.Volumes {
		if vc.Engine == "memory" {
			continue // nothing outlives the daemon: nothing to check
		}
		start := time.Now()
		v, err := Open(ctx, vc, mode, Options{Logger: log})
		if err != nil {
			probs = append(probs, fmt.Sprintf("volume %q: cannot open: %v", vc.Name, err))
			continue
		}
		var say func(phase string, n int64, done bool)
		if progress != nil {
			fmt.Fprintf(progress, "volume %q: opened in %.2fs\n", vc.Name, time.Since(start).Seconds())
			say = func(phase string, n int64, done bool) {
				state := "so far"
				if done {
					state = "done"
				}
				fmt.Fprintf(progress, "volume %q: %.1fs: %s: %d read, %s\n", vc.Name, time.Since(start).Seconds(), phase, n, state)
			}
		}
		p, err := v.check(ctx, mode.Repair, say)
		cerr := v.Close()
		if progress != nil {
			fmt.Fprintf(progress, "volume %q: checked in %.2fs, %d problem(s)\n", vc.Name, time.Since(start).Seconds(), len(p))
		}
		if err != nil {
			return probs, fmt.Errorf("volume %q: check: %w", vc.Name, err)
		}
		if cerr != nil {
			return probs, fmt.Errorf("volume %q: close: %w", vc.Name, cerr)
		}
		for _, line := range p {
			probs = append(probs, fmt.Sprintf("volume %q: %s", vc.Name, line))
		}
	}
	return probs, nil
}

// check runs the consistency check; with repair it first rebuilds the
// case-fold index, which is derived from the entries.
func (v *Volume) check(ctx context.Context, repair bool, say func(phase string, n int64, done bool)) ([]string, error) {
	var probs []string
	if repair {
		if err := v.FS.RebuildCaseFoldIndex(ctx); err != nil {
			probs = append(probs, err.Error())
		}
	}
	p, err := v.FS.CheckProgress(ctx, say)
	return append(probs, p...), err
}

// Format creates every volume of cfg that does not exist yet, even where
// one was formatted before (the operator asked), and returns one line per
// volume saying what it did. It never formats over an existing volume or
// a directory holding anything else.
func Format(ctx context.Context, cfg *conf.Config, log *zap.Logger) ([]string, error) {
	var out []string
	for _, vc := range cfg.Volumes {
		if vc.Engine == "memory" {
			out = append(out, fmt.Sprintf("volume %q: memory engine, nothing to format", vc.Name))
			continue
		}
		v, err := Open(ctx, vc, Mode{Format: vfsbackend.FormatForce}, Options{Logger: log})
		if err != nil {
			return out, err
		}
		what := "already holds a volume, left as it is"
		if v.formatted {
			what = "formatted a new, empty volume"
		}
		out = append(out, fmt.Sprintf("volume %q at %s: %s (id %x)", vc.Name, where(vc), what, v.FS.VolumeID()))
		if err := v.Close(); err != nil {
			return out, fmt.Errorf("volume %q: close: %w", vc.Name, err)
		}
	}
	return out, nil
}

// MinGarbageAge is the least age of the objects CollectGarbage deletes.
const MinGarbageAge = etcdswift.MinGarbageAge

// garbageCollector is implemented by engines that can leave data objects
// no file references (etcdswift).
type garbageCollector interface {
	CollectGarbage(ctx context.Context, olderThan time.Duration) (int, error)
}

// CollectGarbage deletes, in every volume whose engine keeps such a thing,
// the data objects that no file references and that are older than
// olderThan, and returns one line per volume. Gateways may be serving the
// volumes meanwhile.
func CollectGarbage(ctx context.Context, cfg *conf.Config, log *zap.Logger, olderThan time.Duration) ([]string, error) {
	var out []string
	for _, vc := range cfg.Volumes {
		if vc.Engine != etcdswift.Name {
			out = append(out, fmt.Sprintf("volume %q: engine %s leaves no garbage (its open recovers)", vc.Name, vc.Engine))
			continue
		}
		be, err := vfsbackend.Open(vc.Engine, vfsbackend.Options{Remote: vc.Remote, Logger: log, CapacityBytes: vc.CapacityBytes})
		if err != nil {
			return out, fmt.Errorf("volume %q: open %s engine at %s: %w", vc.Name, vc.Engine, where(vc), err)
		}
		gc, ok := be.(garbageCollector)
		if !ok {
			be.Close()
			return out, fmt.Errorf("volume %q: engine %s cannot collect garbage", vc.Name, vc.Engine)
		}
		n, err := gc.CollectGarbage(ctx, olderThan)
		cerr := be.Close()
		if err != nil {
			return out, fmt.Errorf("volume %q: %w", vc.Name, err)
		}
		if cerr != nil {
			return out, fmt.Errorf("volume %q: close: %w", vc.Name, cerr)
		}
		out = append(out, fmt.Sprintf("volume %q at %s: deleted %d unreferenced object(s) older than %v", vc.Name, where(vc), n, olderThan))
	}
	return out, nil
}
