package local

import (
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
		b, err := Open(vfsbackend.Options{Path: dir})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, backendtest.Durable())
}

// TestConformanceCompacting runs the suite with a tiny compaction threshold
// and a tiny descriptor cache, so that compaction and eviction run all the
// time.
func TestConformanceCompacting(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
		b, err := open(vfsbackend.Options{Path: dir}, tuning{compactThreshold: 4 << 10, maxOpenFiles: 2})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, backendtest.Durable())
}
