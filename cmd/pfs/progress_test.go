package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{0, 100 << 20, 0, "[                    ]   0%  0 B / 100.0 MiB  --- MiB/s"},
		{25 << 20, 100 << 20, 2 * time.Second, "[#####               ]  25%  25.0 MiB / 100.0 MiB  12.5 MiB/s"},
		{50 << 20, 100 << 20, time.Second, "[##########          ]  50%  50.0 MiB / 100.0 MiB  50.0 MiB/s"},
		{100 << 20, 100 << 20, 4 * time.Second, "[####################] 100%  100.0 MiB / 100.0 MiB  25.0 MiB/s"},
		{3 << 30, 4 << 30, 10 * time.Second, "[###############     ]  75%  3.0 GiB / 4.0 GiB  307.2 MiB/s"},
		{200, 100, time.Second, "[####################] 100%  200 B / 100 B  0.0 MiB/s"}, // file grew
	} {
		if got := formatProgress(tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("formatProgress(%d, %d, %v) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		9 << 20: "9.0 MiB", 10 << 30: "10.0 GiB", 1 << 62: "4.0 EiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[uint64]string{7: "7", 9999: "9999", 10000: "10.0k", 16364272: "16.4M"} {
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[uint32]string{
		0o040755: "drwxr-xr-x", 0o100644: "-rw-r--r--", 0o120777: "lrwxrwxrwx",
		0o104755: "-rwsr-xr-x", 0o102644: "-rw-r-Sr--", 0o041777: "drwxrwxrwt", 0o041776: "drwxrwxrwT",
		0o100000: "----------", 0o010644: "?rw-r--r--",
	} {
		if got := modeString(mode); got != want {
			t.Errorf("modeString(%o) = %q, want %q", mode, got, want)
		}
	}
}

// TestProgressNotTerminal checks that nothing is drawn when stderr is not
// a terminal, whatever the size.
func TestProgressNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgress(&buf, 1<<40); p != nil {
		t.Fatal("progress on a bytes.Buffer")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) || newProgress(w, 1<<40) != nil {
		t.Error("a pipe taken for a terminal")
	}
	f, err := os.Create(t.TempDir() + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file taken for a terminal")
	}
	var p *progress // nil: every method is a no-op
	p.add(1 << 30)
	p.finish()
}

// TestProgressDrawing checks redraw throttling and clearing with a fake
// clock.
func TestProgressDrawing(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	p := newProgressOn(&buf, 100<<20, func() time.Time { return now })

	p.add(10 << 20) // first update: drawn at once
	first := "\r" + formatProgress(10<<20, 100<<20, 0)
	if buf.String() != first {
		t.Fatalf("first draw %q, want %q", buf.String(), first)
	}
	now = now.Add(50 * time.Millisecond)
	p.add(10 << 20) // too soon
	if buf.String() != first {
		t.Fatalf("redrawn after 50ms: %q", buf.String())
	}
	now = now.Add(50 * time.Millisecond)
	p.add(10 << 20) // 100ms after the first draw
	second := "\r" + formatProgress(30<<20, 100<<20, 100*time.Millisecond)
	if buf.String() != first+second {
		t.Fatalf("second draw %q, want %q", buf.String()[len(first):], second)
	}
	// At most ~10 redraws per second however many updates.
	buf.Reset()
	for range 1000 {
		now = now.Add(time.Millisecond)
		p.add(1)
	}
	if n := strings.Count(buf.String(), "\r"); n < 9 || n > 10 {
		t.Errorf("%d redraws in one second", n)
	}
	last := buf.String()[strings.LastIndex(buf.String(), "\r")+1:]
	buf.Reset()
	p.finish()
	if want := "\r" + strings.Repeat(" ", len(last)) + "\r"; buf.String() != want {
		t.Errorf("finish wrote %q, want %q", buf.String(), want)
	}
	buf.Reset()
	p.finish() // twice: nothing more
	if buf.Len() != 0 {
		t.Errorf("second finish wrote %q", buf.String())
	}
}

// TestProgressShorterLine checks that a shorter line overwrites a longer
// one completely.
func TestProgressShorterLine(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	p := newProgressOn(&buf, 100<<20, func() time.Time { return now })
	now = now.Add(10 * time.Millisecond)
	p.add(99 << 20) // "9900.0 MiB/s"
	l1 := len(formatProgress(99<<20, 100<<20, 10*time.Millisecond))
	buf.Reset()
	now = now.Add(time.Hour) // the rate shrinks to "0.0 MiB/s"
	p.add(0)
	l2 := len(formatProgress(99<<20, 100<<20, time.Hour))
	if l2 >= l1 {
		t.Fatalf("test broken: lines of %d and %d chars", l1, l2)
	}
	if got := len(buf.String()) - 1; got != l1 {
		t.Errorf("redraw of %d chars over a line of %d: %q", got, l1, buf.String())
	}
}
