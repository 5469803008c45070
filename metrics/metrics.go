// Package metrics holds proxyfsd's Prometheus metrics: the collectors, an
// instrumented storage engine wrapper, and the HTTP handler that serves
// /metrics, /healthz and /readyz.
//
// Every collector is registered on a registry the caller passes in (never
// the global default one), and every label has a bounded set of values:
// channel ("json", "binary"), method (the protocol's method names), errno
// (an errno name), engine operation, and volume (from the config). Paths,
// inode numbers, mount ids and user names are never labels.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Channel label values.
const (
	ChannelJSON   = "json"
	ChannelBinary = "binary"
)

// Metrics is the set of proxyfsd's collectors. A nil *Metrics is valid and
// records nothing, so code paths need no checks.
type Metrics struct {
	requests     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	inflight     *prometheus.GaugeVec
	bytesRead    *prometheus.CounterVec
	bytesWritten *prometheus.CounterVec
	connections  *prometheus.GaugeVec
	engineOps    *prometheus.HistogramVec
	engineErrors *prometheus.CounterVec
	volumes      *volumeCollector
	reg          prometheus.Registerer

	// The series of each (channel, method) and engine operation, resolved
	// once: WithLabelValues hashes and validates its labels on every call,
	// which is a measurable part of a call that takes microseconds.
	mu      sync.RWMutex
	series  map[seriesKey]*reqSeries
	engines map[engineKey]*engineSeries
}

type engineKey struct{ volume, op string }

type seriesKey struct{ channel, method string }

type reqSeries struct {
	inflight prometheus.Gauge
	requests prometheus.Counter
	latency  prometheus.Observer
}

type engineSeries struct {
	latency prometheus.Observer
}

// reqSeriesFor returns the series of (channel, method), creating them
// once.
func (m *Metrics) reqSeriesFor(channel, method string) *reqSeries {
	return once(&m.mu, m.series, seriesKey{channel, method}, func() *reqSeries {
		return &reqSeries{
			inflight: m.inflight.WithLabelValues(channel),
			requests: m.requests.WithLabelValues(channel, method),
			latency:  m.latency.WithLabelValues(channel, method),
		}
	})
}

// engineSeriesFor is reqSeriesFor for an engine operation on a volume.
func (m *Metrics) engineSeriesFor(volume, op string) *engineSeries {
	return once(&m.mu, m.engines, engineKey{volume, op}, func() *engineSeries {
		return &engineSeries{latency: m.engineOps.WithLabelValues(volume, op)}
	})
}

// once returns cache[k], made by mk (with mu held) the first time.
func once[K comparable, V any](mu *sync.RWMutex, cache map[K]V, k K, mk func() V) V {
	mu.RLock()
	v, ok := cache[k]
	mu.RUnlock()
	if ok {
		return v
	}
	mu.Lock()
	defer mu.Unlock()
	if v, ok = cache[k]; !ok {
		v = mk()
		cache[k] = v
	}
	return v
}

// latencyBuckets spans 10µs to ~5s: loopback metadata calls take tens of
// microseconds, a flush of a large file can take seconds.
var latencyBuckets = prometheus.ExponentialBuckets(10e-6, 2.5, 15)

// New creates the collectors and registers them, with the Go runtime and
// process collectors, on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg:     reg,
		volumes: &volumeCollector{usage: map[string]func() (VolumeUsage, error){}},
		series:  map[seriesKey]*reqSeries{},
		engines: map[engineKey]*engineSeries{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxyfs_requests_total",
			Help: "Requests handled, by channel and method.",
		}, []string{"channel", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxyfs_request_errors_total",
			Help: "Requests that failed, by channel, method and errno name.",
		}, []string{"channel", "method", "errno"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proxyfs_request_duration_seconds",
			Help:    "Time from reading a request to sending its reply, by channel and method.",
			Buckets: latencyBuckets,
		}, []string{"channel", "method"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "proxyfs_requests_in_flight",
			Help: "Requests being handled now, by channel.",
		}, []string{"channel"}),
		bytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxyfs_read_bytes_total",
			Help: "File data bytes returned by read, by channel.",
		}, []string{"channel"}),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxyfs_written_bytes_total",
			Help: "File data bytes stored by write, by channel.",
		}, []string{"channel"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "proxyfs_connections",
			Help: "Open client connections, by channel.",
		}, []string{"channel"}),
		engineOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proxyfs_engine_operation_duration_seconds",
			Help:    "Storage engine operation latency, by volume and operation (sync and sync_data are the syncs; sync includes the engine's periodic one).",
			Buckets: latencyBuckets,
		}, []string{"volume", "op"}),
		engineErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proxyfs_engine_operation_errors_total",
			Help: "Storage engine operations that failed, by volume and operation.",
		}, []string{"volume", "op"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.errors, m.latency, m.inflight, m.bytesRead, m.bytesWritten,
		m.connections, m.engineOps, m.engineErrors, m.volumes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Request records the start of a request on a channel and returns the
// function that records its end with its errno name ("" for success).
func (m *Metrics) Request(channel, method string) (done func(errno string)) {
	if m == nil {
		return func(string) {}
	}
	start := time.Now()
	s := m.reqSeriesFor(channel, method)
	s.inflight.Inc()
	return func(errno string) {
		s.inflight.Dec()
		s.requests.Inc()
		s.latency.Observe(time.Since(start).Seconds())
		if errno != "" {
			m.errors.WithLabelValues(channel, method, errno).Inc()
		}
	}
}

// DataRead counts n bytes of file data read on a channel.
func (m *Metrics) DataRead(channel string, n int) {
	if m != nil && n > 0 {
		m.bytesRead.WithLabelValues(channel).Add(float64(n))
	}
}

// DataWritten counts n bytes of file data written on a channel.
func (m *Metrics) DataWritten(channel string, n int) {
	if m != nil && n > 0 {
		m.bytesWritten.WithLabelValues(channel).Add(float64(n))
	}
}

// ConnOpened counts a new connection on a channel; call the returned
// function when it closes.
func (m *Metrics) ConnOpened(channel string) (closed func()) {
	if m == nil {
		return func() {}
	}
	g := m.connections.WithLabelValues(channel)
	g.Inc()
	return g.Dec
}

// MountStats are the mount table's numbers, for RegisterMounts.
type MountStats struct {
	// Mounts is the number of live mounts, orphaned ones included.
	Mounts int
	// Orphaned is the number of mounts that no connection holds, in their
	// grace period.
	Orphaned int
	// Reclaimed counts the mounts unmounted because no connection held
	// them for the grace period.
	Reclaimed uint64
	// Handles is the number of open file handles.
	Handles int
	// LockedFiles is the number of files with locks or lock waiters.
	LockedFiles int
	// LockWaiters is the number of lock calls waiting.
	LockWaiters int
	// LockConflicts counts lock requests that found a conflict (EAGAIN
	// or a wait); LockDeadlocks the EDEADLK answers.
	LockConflicts, LockDeadlocks uint64
	// LockGrace is the number of volumes in their lock grace period.
	LockGrace int
}

var (
	descMounts = prometheus.NewDesc("proxyfs_mounts",
		"Active mounts (orphaned ones included).", nil, nil)
	descMountsOrphaned = prometheus.NewDesc("proxyfs_mounts_orphaned",
		"Mounts that no connection holds, waiting out their grace period.", nil, nil)
	descMountsReclaimed = prometheus.NewDesc("proxyfs_mounts_reclaimed_total",
		"Mounts unmounted because no connection held them for the grace period.", nil, nil)
	descHandles = prometheus.NewDesc("proxyfs_open_handles",
		"Open file handles.", nil, nil)
	descLockedFiles = prometheus.NewDesc("proxyfs_locked_files",
		"Files with byte-range or flock locks, or lock waiters.", nil, nil)
	descLockWaiters = prometheus.NewDesc("proxyfs_lock_waiters",
		"Lock calls waiting for a lock.", nil, nil)
	descLockConflicts = prometheus.NewDesc("proxyfs_lock_conflicts_total",
		"Lock requests that found a conflicting lock (EAGAIN or a wait).", nil, nil)
	descLockDeadlocks = prometheus.NewDesc("proxyfs_lock_deadlocks_total",
		"Lock waits refused with EDEADLK.", nil, nil)
	descLockGrace = prometheus.NewDesc("proxyfs_volumes_in_lock_grace",
		"Volumes in their lock grace period after a start (only reclaims are granted).", nil, nil)
)

// mountCollector reports the mount table's numbers, read once per scrape.
type mountCollector struct{ stats func() MountStats }

func (c mountCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMounts
	ch <- descMountsOrphaned
	ch <- descMountsReclaimed
	ch <- descHandles
	ch <- descLockedFiles
	ch <- descLockWaiters
	ch <- descLockConflicts
	ch <- descLockDeadlocks
	ch <- descLockGrace
}

func (c mountCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(descMounts, prometheus.GaugeValue, float64(st.Mounts))
	ch <- prometheus.MustNewConstMetric(descMountsOrphaned, prometheus.GaugeValue, float64(st.Orphaned))
	ch <- prometheus.MustNewConstMetric(descMountsReclaimed, prometheus.CounterValue, float64(st.Reclaimed))
	ch <- prometheus.MustNewConstMetric(descHandles, prometheus.GaugeValue, float64(st.Handles))
	ch <- prometheus.MustNewConstMetric(descLockedFiles, prometheus.GaugeValue, float64(st.LockedFiles))
	ch <- prometheus.MustNewConstMetric(descLockWaiters, prometheus.GaugeValue, float64(st.LockWaiters))
	ch <- prometheus.MustNewConstMetric(descLockConflicts, prometheus.CounterValue, float64(st.LockConflicts))
	ch <- prometheus.MustNewConstMetric(descLockDeadlocks, prometheus.CounterValue, float64(st.LockDeadlocks))
	ch <- prometheus.MustNewConstMetric(descLockGrace, prometheus.GaugeValue, float64(st.LockGrace))
}

// RegisterMounts exports the mount table's numbers, read from stats at
// scrape time: proxyfs_mounts, proxyfs_mounts_orphaned,
// proxyfs_mounts_reclaimed_total, and the open handles and locks.
func (m *Metrics) RegisterMounts(stats func() MountStats) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(mountCollector{stats: stats})
}

// engineOp records one engine operation on a volume.
func (m *Metrics) engineOp(volume, op string, start time.Time, err error) {
	m.engineSeriesFor(volume, op).latency.Observe(time.Since(start).Seconds())
	if err != nil {
		m.engineErrors.WithLabelValues(volume, op).Inc() // rare: a series only once it happens
	}
}

// RegisterBuildInfo exports proxyfs_build_info{version, go_version}, a
// gauge of 1: what is running, for dashboards and alerts.
func (m *Metrics) RegisterBuildInfo(version string) error {
	if m == nil {
		return nil
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "proxyfs_build_info",
		Help:        "1, labelled with the daemon's version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	})
	g.Set(1)
	return m.reg.Register(g)
}
