package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

func scrape(t *testing.T, h http.Handler) map[string]*dto {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	out := map[string]*dto{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name
			for _, l := range m.Label {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			d := &dto{}
			switch {
			case m.Counter != nil:
				d.v = m.Counter.GetValue()
			case m.Gauge != nil:
				d.v = m.Gauge.GetValue()
			case m.Histogram != nil:
				d.v = float64(m.Histogram.GetSampleCount())
			}
			out[key] = d
		}
	}
	return out
}

type dto struct{ v float64 }

func TestCountersAndHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		m.Request(metrics.ChannelJSON, "lookup")("")
	}
	m.Request(metrics.ChannelJSON, "lookup")("ENOENT")
	done := m.Request(metrics.ChannelBinary, "read")
	m.DataRead(metrics.ChannelBinary, 4096)
	m.DataWritten(metrics.ChannelJSON, 11)
	closed := m.ConnOpened(metrics.ChannelBinary)
	if err := m.RegisterMounts(func() metrics.MountStats { return metrics.MountStats{Mounts: 2, Orphaned: 1, Reclaimed: 5} }); err != nil {
		t.Fatal(err)
	}
	be := m.WrapBackend("default", mem.New(vfsbackend.Options{}))
	ctx := context.Background()
	be.Get(ctx, []byte("missing"))
	be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: []byte("k"), Value: []byte("v")}}})
	be.Sync(ctx)
	// The engine's own periodic sync, through the observer.
	m.EngineObserver("other")("sync", time.Now(), nil)
	m.EngineObserver("other")("sync", time.Now(), io.ErrClosedPipe)
	if err := m.RegisterBuildInfo("9.9.9"); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterVolume("default", func() (metrics.VolumeUsage, error) {
		return metrics.VolumeUsage{SizeBytes: 100, FreeBytes: 40, Inodes: 7, FreeInodes: 3}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterVolume("other", func() (metrics.VolumeUsage, error) { return metrics.VolumeUsage{Inodes: 1}, nil }); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterVolume("other", nil); err == nil {
		t.Fatal("duplicate volume registered")
	}
	h := metrics.Handler(reg, func() error { return nil }, true)
	got := scrape(t, h)
	want := map[string]float64{
		"proxyfs_requests_total,channel=json,method=lookup":                     4,
		"proxyfs_request_errors_total,channel=json,errno=ENOENT,method=lookup":  1,
		"proxyfs_request_duration_seconds,channel=json,method=lookup":           4,
		"proxyfs_requests_in_flight,channel=binary":                             1,
		"proxyfs_read_bytes_total,channel=binary":                               4096,
		"proxyfs_written_bytes_total,channel=json":                              11,
		"proxyfs_connections,channel=binary":                                    1,
		"proxyfs_mounts":                                                        2,
		"proxyfs_mounts_orphaned":                                               1,
		"proxyfs_mounts_reclaimed_total":                                        5,
		"proxyfs_engine_operation_duration_seconds,op=get,volume=default":       1,
		"proxyfs_engine_operation_duration_seconds,op=commit,volume=default":    1,
		"proxyfs_engine_operation_duration_seconds,op=sync,volume=default":      1,
		"proxyfs_engine_operation_duration_seconds,op=sync,volume=other":        2,
		"proxyfs_engine_operation_errors_total,op=sync,volume=other":            1,
		"proxyfs_build_info,go_version=" + runtime.Version() + ",version=9.9.9": 1,
		"proxyfs_volume_size_bytes,volume=default":                              100,
		"proxyfs_volume_inodes,volume=default":                                  7,
	}
	for k, v := range want {
		if got[k] == nil || got[k].v != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["proxyfs_engine_operation_errors_total,op=get,volume=default"] != nil {
		t.Errorf("a missing key counted as an engine error")
	}
	if got["go_goroutines"] == nil || got["process_cpu_seconds_total"] == nil {
		t.Errorf("runtime or process collector missing")
	}
	done("")
	closed()
	got = scrape(t, h)
	if got["proxyfs_requests_in_flight,channel=binary"].v != 0 || got["proxyfs_connections,channel=binary"].v != 0 {
		t.Errorf("gauges did not go down")
	}
	for path, code := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 200} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != code {
			t.Errorf("%s: %d", path, rec.Code)
		}
	}
	notReady := metrics.Handler(reg, func() error { return io.ErrClosedPipe }, false)
	rec := httptest.NewRecorder()
	notReady.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "closed pipe") {
		t.Errorf("/readyz not ready: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	notReady.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code != 404 {
		t.Errorf("pprof served without being enabled: %d", rec.Code)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Request("json", "x")("EIO")
	m.DataRead("json", 1)
	m.ConnOpened("json")()
	if m.RegisterMounts(func() metrics.MountStats { return metrics.MountStats{Mounts: 1} }) != nil {
		t.Fatal("nil metrics registered")
	}
	be := mem.New(vfsbackend.Options{})
	if m.WrapBackend("v", be) != be || m.EngineObserver("v") != nil || m.RegisterBuildInfo("x") != nil {
		t.Fatal("nil metrics wrapped the backend")
	}
}
