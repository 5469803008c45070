package fusefs

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// requestCounts returns the daemon's proxyfs_requests_total by
// "channel/method" (from /metrics).
func requestCounts(t *testing.T, d *daemontest.Daemon) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "proxyfs_requests_total{")
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var ch, method string
		for _, l := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(l, "=")
			switch k {
			case "channel":
				ch = strings.Trim(v, `"`)
			case "method":
				method = strings.Trim(v, `"`)
			}
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", line, err)
		}
		out[ch+"/"+method] += f
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	return out
}

// TestHotRequestsBinary checks that the requests of creating, opening,
// reading, writing, stating and removing files (every FUSE request of a
// metadata-heavy workload) go over the binary channel: none of them
// costs the daemon a JSON-RPC call.
func TestHotRequestsBinary(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{Metrics: true})
	before := requestCounts(t, e.d)
	const n = 20
	for i := range n {
		p := e.path("f" + strconv.Itoa(i))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{"d", "a", "t", "a"} { // four writes
			if _, err := f.WriteString(part); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "data" {
			t.Fatalf("read %s: %q, %v", p, b, err)
		}
		if _, err := os.Lstat(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel sends releases in the background: wait for the closes.
	var after map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		after = requestCounts(t, e.d)
		if after["binary/close"]-before["binary/close"] >= 2*n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range []string{"open", "close", "create", "unlink", "lookup", "get_stat", "read", "write"} {
		if d := after["json/"+m] - before["json/"+m]; d != 0 {
			t.Errorf("%v JSON-RPC %s calls, want none (binary channel)", d, m)
		}
	}
	// The server drops privileges on a write (HANDLE_KILLPRIV_V2): the
	// kernel does not ask for security.capability before each one (at
	// most once per file).
	if d := after["json/get_xattr"] - before["json/get_xattr"]; d > n {
		t.Errorf("%v get_xattr calls for %d writes to %d files, want at most one per file", d, 4*n, n)
	}
	for m, want := range map[string]float64{"create": n, "open": n, "close": 2 * n, "unlink": n, "write": 4 * n} {
		if d := after["binary/"+m] - before["binary/"+m]; d < want {
			t.Errorf("%v binary %s calls, want at least %v", d, m, want)
		}
	}
}

// TestReadAhead checks that a mount by root gets ReadAhead as its
// kernel readahead, so that a sequential reader has several reads in
// flight.
func TestReadAhead(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("only root may set a mount's readahead")
	}
	e := start(t, Options{}, daemontest.Options{})
	var st syscall.Stat_t
	if err := syscall.Stat(e.dir, &st); err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("no bdi readahead to check: %v", err)
	}
	if got, want := strings.TrimSpace(string(b)), strconv.Itoa(ReadAhead/1024); got != want {
		t.Errorf("%s: %s, want %s", p, got, want)
	}
}
