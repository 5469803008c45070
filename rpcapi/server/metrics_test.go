package server_test

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// scrape fetches /metrics from the daemon and returns every sample by
// "name{label=value,...}" (labels in the parser's order); histograms give
// their sample count.
func scrape(t *testing.T, d *daemontest.Daemon) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name + "{"
			for i, l := range m.Label {
				if i > 0 {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			key += "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			case m.Untyped != nil:
				out[key] = m.Untyped.GetValue()
			}
		}
	}
	return out
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetrics runs a known workload on both channels and checks that the
// counters moved by exactly what was done.
func TestMetrics(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Metrics: true, Pprof: true})
	for _, p := range []string{"/healthz", "/readyz", "/debug/pprof/"} {
		if code := httpStatus(t, "http://"+d.MetricsAddr+p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
	before := scrape(t, d)
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)
	for range 3 {
		rc.ok(wire.MethodLookup, obj{"mount_id": id, "inode": 1, "name": "f"}, nil)
	}
	for range 2 {
		rc.fails(wire.MethodLookup, obj{"mount_id": id, "inode": 1, "name": "nope"}, "ENOENT", 2)
	}
	rc.fails("no_such_method", obj{}, "ENOSYS", -32601)
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": []byte("0123456789")}, nil)
	rc.ok(wire.MethodRead, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "length": 4}, nil)

	bc := dialBin(t, "tcp", d.TCPAddr)
	bc.request(wire.RequestHeader{Opcode: wire.OpWrite, ID: 1, MountID: id, Inode: f.Inode, Offset: 10, Length: 5}, []byte("hello"))
	if h, _ := bc.reply(); h.Errno != 0 {
		t.Fatalf("binary write: %+v", h)
	}
	bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 2, MountID: id, Inode: f.Inode, Length: 100}, nil)
	if h, _ := bc.reply(); h.Errno != 0 || h.Length != 15 {
		t.Fatalf("binary read: %+v", h)
	}
	bc.request(wire.RequestHeader{Opcode: wire.OpRead, ID: 3, MountID: id, Inode: 999999, Length: 1}, nil)
	if h, _ := bc.reply(); h.Errno != 2 {
		t.Fatalf("binary read of a missing inode: %+v", h)
	}

	var after map[string]float64
	delta := func(k string) float64 { return after[k] - before[k] }
	want := map[string]float64{
		"proxyfs_requests_total{channel=json,method=mount}":                      1,
		"proxyfs_requests_total{channel=json,method=create_path}":                1,
		"proxyfs_requests_total{channel=json,method=lookup}":                     5,
		"proxyfs_request_errors_total{channel=json,errno=ENOENT,method=lookup}":  2,
		"proxyfs_requests_total{channel=json,method=unknown}":                    1,
		"proxyfs_request_errors_total{channel=json,errno=ENOSYS,method=unknown}": 1,
		"proxyfs_request_duration_seconds{channel=json,method=lookup}":           5,
		"proxyfs_written_bytes_total{channel=json}":                              10,
		"proxyfs_read_bytes_total{channel=json}":                                 4,
		"proxyfs_requests_total{channel=binary,method=write}":                    1,
		"proxyfs_requests_total{channel=binary,method=read}":                     2,
		"proxyfs_request_errors_total{channel=binary,errno=ENOENT,method=read}":  1,
		"proxyfs_request_duration_seconds{channel=binary,method=read}":           2,
		"proxyfs_written_bytes_total{channel=binary}":                            5,
		"proxyfs_read_bytes_total{channel=binary}":                               15,
		"proxyfs_mounts{}":                      1,
		"proxyfs_connections{channel=json}":     1,
		"proxyfs_connections{channel=binary}":   1,
		"proxyfs_volume_inodes{volume=default}": 1,
	}
	// A request is counted once its reply is sent (its duration includes
	// the sending): the last reply may reach us first. Scrape until the
	// counts are there, for a while.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = scrape(t, d)
		settled := true
		for k, v := range want {
			settled = settled && delta(k) == v
		}
		if settled || time.Now().After(deadline) {
			break
		}
	}
	for k, v := range want {
		if got := delta(k); got != v {
			t.Errorf("%s moved by %v, want %v", k, got, v)
		}
	}
	// The workload's engine commits and reads were timed, per volume.
	if delta("proxyfs_engine_operation_duration_seconds{op=commit,volume=default}") < 3 {
		t.Errorf("engine commits not counted: %v", delta("proxyfs_engine_operation_duration_seconds{op=commit,volume=default}"))
	}
	// The file is small, kept inline: each of the two reads that got data
	// is one engine read, not two, and none is an engine error (the
	// binary read asks for the data file first, which inline data has
	// not).
	if got := delta("proxyfs_engine_operation_duration_seconds{op=read_data,volume=default}"); got != 2 {
		t.Errorf("engine reads: %v, want 2", got)
	}
	if got := after["proxyfs_engine_operation_errors_total{op=read_data,volume=default}"]; got != 0 {
		t.Errorf("engine read errors: %v", got)
	}
	// The engine's own periodic sync (every second) is timed.
	time.Sleep(1500 * time.Millisecond)
	later := scrape(t, d)
	if later["proxyfs_engine_operation_duration_seconds{op=sync,volume=default}"] < 1 {
		t.Errorf("periodic sync not timed")
	}
	// Free space is what the volume may use: statvfs f_bavail.
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(d.DataDir, &sfs); err != nil {
		t.Fatal(err)
	}
	avail, free := float64(sfs.Bavail)*float64(sfs.Bsize), float64(sfs.Bfree)*float64(sfs.Bsize)
	if got := later["proxyfs_volume_free_bytes{volume=default}"]; got < avail*0.99 || got > avail*1.01 {
		t.Errorf("proxyfs_volume_free_bytes %v, want about f_bavail %v (f_bfree %v)", got, avail, free)
	}
	info := 0
	for k, v := range later {
		if strings.HasPrefix(k, "proxyfs_build_info{") && strings.Contains(k, "version=") && v == 1 {
			info++
		}
	}
	if info != 1 {
		t.Errorf("proxyfs_build_info: %d series", info)
	}
	for _, k := range []string{"proxyfs_volume_size_bytes{volume=default}", "go_goroutines{}", "process_resident_memory_bytes{}"} {
		if after[k] <= 0 {
			t.Errorf("%s = %v", k, after[k])
		}
	}
	for k := range after {
		for _, bad := range []string{"mount_id", "inode=", "path=", "user="} {
			if strings.Contains(k, bad) {
				t.Errorf("unbounded label in %s", k)
			}
		}
	}
	d.Check(t)
}
