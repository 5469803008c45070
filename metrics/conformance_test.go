package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
	"github.com/proxyfs/proxyfs/vfsbackend/local"
)

// TestConformance runs the engine conformance suite through the
// instrumented wrapper around the local engine: the wrapper must be
// invisible (optional capabilities included).
func TestConformance(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
		b, err := local.Open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew, InlineBytes: vfsbackend.DefaultInlineBytes})
		if err != nil {
			t.Fatal(err)
		}
		return m.WrapBackend("conformance", b)
	}, backendtest.Durable())
}
