package volume

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Check opens every volume of cfg read-only (it writes nothing, not even
// to recover from a crash), runs the consistency check on each and returns
// the problems found, each prefixed with its volume's name. A volume that
// cannot be opened (damaged, missing) is a problem too. The volumes must
// not be in use by a running daemon.
func Check(ctx context.Context, cfg *conf.Config, log *zap.Logger) ([]string, error) {
	return checkAll(ctx, cfg, log, Mode{ReadOnly: true})
}

// Repair opens every volume of cfg allowing the recovery that drops
// acknowledged changes (such as log records behind damage in the middle
// of the log, which the engine saves aside first), then checks each as
// Check does. Opening for service refuses such damage.
func Repair(ctx context.Context, cfg *conf.Config, log *zap.Logger) ([]string, error) {
	return checkAll(ctx, cfg, log, Mode{Repair: true})
}

func checkAll(ctx context.Context, cfg *conf.Config, log *zap.Logger, mode Mode) ([]string, error) {
	var probs []string
	for _, vc := range cfg.Volumes {
		if vc.Engine == "memory" {
			continue // nothing outlives the daemon: nothing to check
		}
		v, err := Open(ctx, vc, mode, Options{Logger: log})
		if err != nil {
			probs = append(probs, fmt.Sprintf("volume %q: cannot open: %v", vc.Name, err))
			continue
		}
		p, err := v.check(ctx, mode.Repair)
		cerr := v.Close()
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
func (v *Volume) check(ctx context.Context, repair bool) ([]string, error) {
	var probs []string
	if repair {
		if err := v.FS.RebuildCaseFoldIndex(ctx); err != nil {
			probs = append(probs, err.Error())
		}
	}
	p, err := v.FS.Check(ctx)
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
