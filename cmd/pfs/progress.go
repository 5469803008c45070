package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressInterval is the minimum time between two redraws.
const progressInterval = 100 * time.Millisecond

// progressBarWidth is the number of cells of the bar.
const progressBarWidth = 20

// progress draws a one-line progress bar on a terminal. A nil *progress
// does nothing, which is what newProgress returns when there is nothing
// to show.
type progress struct {
	w       io.Writer
	total   int64
	done    int64
	start   time.Time
	last    time.Time // of the last redraw
	drawn   int       // length of the line on screen
	now     func() time.Time
	started bool
}

// newProgress returns a progress bar for a transfer of total bytes on w,
// or nil if w is not a terminal or total is unknown (< 0) or at most
// progressThreshold.
func newProgress(w io.Writer, total int64) *progress {
	if total <= progressThreshold || !isTerminal(w) {
		return nil
	}
	return newProgressOn(w, total, time.Now)
}

// newProgressOn returns a progress bar drawn on w unconditionally, with
// clock now.
func newProgressOn(w io.Writer, total int64, now func() time.Time) *progress {
	return &progress{w: w, total: total, now: now, start: now()}
}

// add records n more bytes and redraws if the last redraw is at least
// progressInterval old.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.done += n
	t := p.now()
	if p.started && t.Sub(p.last) < progressInterval {
		return
	}
	p.started = true
	p.last = t
	line := formatProgress(p.done, p.total, t.Sub(p.start))
	pad := ""
	if d := p.drawn - len(line); d > 0 {
		pad = strings.Repeat(" ", d)
	}
	fmt.Fprint(p.w, "\r"+line+pad)
	p.drawn = len(line)
}

// finish clears the line if anything was drawn.
func (p *progress) finish() {
	if p == nil || p.drawn == 0 {
		return
	}
	fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.drawn)+"\r")
	p.drawn = 0
}

// formatProgress renders a progress line: bar, percentage, bytes done and
// total, and the average rate in MiB/s since the start.
//
//	[#####               ]  25%  25.0 MiB / 100.0 MiB  12.5 MiB/s
func formatProgress(done, total int64, elapsed time.Duration) string {
	frac := 0.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	cells := int(frac * progressBarWidth)
	bar := strings.Repeat("#", cells) + strings.Repeat(" ", progressBarWidth-cells)
	rate := "--- MiB/s"
	if elapsed > 0 {
		rate = fmt.Sprintf("%.1f MiB/s", float64(done)/(1<<20)/elapsed.Seconds())
	}
	return fmt.Sprintf("[%s] %3d%%  %s / %s  %s", bar, int(frac*100),
		humanBytes(uint64(max(done, 0))), humanBytes(uint64(max(total, 0))), rate)
}
