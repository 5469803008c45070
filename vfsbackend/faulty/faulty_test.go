package faulty_test

import (
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
	"github.com/proxyfs/proxyfs/vfsbackend/faulty"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// TestConformance runs the engine conformance suite through the fault
// injector with no fault set: it must change nothing.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
		return faulty.Wrap(mem.New(vfsbackend.Options{}))
	})
}
