package client

import (
	"math"
	"slices"
)

// The client's record of the POSIX locks one owner holds through a
// handle, kept as the server keeps them (fcntl(2) rules, PROTOCOL.md
// section 4), so that they can be reclaimed after a daemon restart.

// maxLockOffset is the last byte a lock can cover (2^63-1); a lock of
// length 0 runs to it.
const maxLockOffset = math.MaxInt64

// lockRange is the bytes [start, end] (end included) that one owner holds
// with one type (LockRead or LockWrite).
type lockRange struct {
	start, end uint64
	typ        LockType
}

// lockSpan converts a lock's start and length (0: to the end of the file)
// into its first and last byte. start and length must be valid
// (non-negative, within maxLockOffset).
func lockSpan(start, length int64) (s, e uint64) {
	if length == 0 {
		return uint64(start), maxLockOffset
	}
	return uint64(start), uint64(start) + uint64(length) - 1
}

// startLen converts r back into a start and a length (0 when it runs to
// maxLockOffset).
func (r lockRange) startLen() (start, length int64) {
	if r.end >= maxLockOffset {
		return int64(r.start), 0
	}
	return int64(r.start), int64(r.end - r.start + 1)
}

// setRange returns the ranges an owner holds after setting [s, e] to typ
// (LockUnlock releases them), given rs, the sorted disjoint ranges it held
// before, as fcntl(2) does: the new lock replaces whatever the owner held
// over those bytes (converting or splitting the ranges it overlaps), and
// ranges of one type that overlap or touch merge into one. rs is not
// modified; the result is sorted by start, its ranges disjoint, and two
// neighbours of the same type never touch.
func setRange(rs []lockRange, typ LockType, s, e uint64) []lockRange {
	out := make([]lockRange, 0, len(rs)+2)
	for _, r := range rs {
		if r.end < s || r.start > e {
			out = append(out, r)
			continue
		}
		// r overlaps [s, e]: keep what lies outside it.
		if r.start < s {
			out = append(out, lockRange{r.start, s - 1, r.typ})
		}
		if r.end > e {
			out = append(out, lockRange{e + 1, r.end, r.typ})
		}
	}
	if typ != LockUnlock {
		out = append(out, lockRange{s, e, typ})
	}
	slices.SortFunc(out, func(a, b lockRange) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	// Merge neighbours of one type that touch (they cannot overlap).
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && merged[n-1].typ == r.typ && merged[n-1].end+1 == r.start {
			merged[n-1].end = r.end
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) == 0 {
		return nil
	}
	return merged
}
