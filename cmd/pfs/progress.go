package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressInterval is the minimum time between two redraws.
const progressInterval = 100 * time.Millisecond

// progressBarWidth is the number of cells of the bar.
const progressBarWidth = 20

// progress draws a one-line progress bar on a terminal. A nil *progress
// does nothing, which is what newProgress returns when there is nothing
// to show. For a transfer of unknown size (total < 0: stdin), the line
// shows the bytes done and the rate, without a bar, once more than
// progressThreshold bytes went through.
type progress struct {
	w       io.Writer
	mu      *sync.Mutex // if set, held while drawing (shared with other writers of w)
	total   int64
	done    int64
	start   time.Time
	last    time.Time // of the last redraw
	drawn   int       // length of the line on screen
	now     func() time.Time
	started bool
}

// newProgress returns a progress bar for a transfer of total bytes on w,
// or nil if w is not a terminal or total is known (>= 0) and at most
// progressThreshold.
func newProgress(w io.Writer, total int64) *progress {
	if total >= 0 && total <= progressThreshold || !isTerminal(w) {
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
	if p.mu != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	p.done += n
	if p.total < 0 && p.done <= progressThreshold {
		return
	}
	t := p.now()
	if p.started && t.Sub(p.last) < progressInterval {
		return
	}
	p.started = true
	p.last = t
	var line string
	if p.total < 0 {
		line = formatProgressUnknown(p.done, t.Sub(p.start))
	} else {
		line = formatProgress(p.done, p.total, t.Sub(p.start))
	}
	pad := ""
	if d := p.drawn - len(line); d > 0 {
		pad = strings.Repeat(" ", d)
	}
	fmt.Fprint(p.w, "\r"+line+pad)
	p.drawn = len(line)
}

// finish clears the line if anything was drawn.
func (p *progress) finish() {
	if p == nil {
		return
	}
	if p.mu != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	p.clear()
}

// clear erases the line on screen, if any, with p.mu held (if set); the
// next add draws it again.
func (p *progress) clear() {
	if p == nil || p.drawn == 0 {
		return
	}
	fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.drawn)+"\r")
	p.drawn = 0
	p.started = false
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
	return fmt.Sprintf("[%s] %3d%%  %s / %s  %s", bar, int(frac*100),
		humanBytes(uint64(max(done, 0))), humanBytes(uint64(max(total, 0))), formatRate(done, elapsed))
}

// formatProgressUnknown renders the progress of a transfer of unknown
// size: bytes done and the average rate.
//
//	25.0 MiB  12.5 MiB/s
func formatProgressUnknown(done int64, elapsed time.Duration) string {
	return fmt.Sprintf("%s  %s", humanBytes(uint64(max(done, 0))), formatRate(done, elapsed))
}

func formatRate(done int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "--- MiB/s"
	}
	return fmt.Sprintf("%.1f MiB/s", float64(done)/(1<<20)/elapsed.Seconds())
}
