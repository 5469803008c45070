package client

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// lk is a compact lock request for the table: type, start, len (0: to the
// end).
type lk struct {
	t      LockType
	start  int64
	length int64
}

func rg(s, e uint64, t LockType) lockRange { return lockRange{s, e, t} }

const eof = maxLockOffset

func TestSetRange(t *testing.T) {
	R, W, U := LockRead, LockWrite, LockUnlock
	tests := []struct {
		name string
		ops  []lk
		want []lockRange
	}{
		{"one", []lk{{W, 0, 100}}, []lockRange{rg(0, 99, W)}},
		{"len 0 to the end", []lk{{R, 10, 0}}, []lockRange{rg(10, eof, R)}},
		{"full length up to the max", []lk{{R, 1, eof}}, []lockRange{rg(1, eof, R)}},
		{"unlock nothing", []lk{{U, 0, 0}}, nil},
		{"unlock all", []lk{{W, 5, 10}, {R, 100, 0}, {U, 0, 0}}, nil},
		{"unlock exactly", []lk{{W, 5, 10}, {U, 5, 10}}, nil},
		{"disjoint sorted", []lk{{W, 50, 10}, {R, 0, 10}, {W, 20, 5}},
			[]lockRange{rg(0, 9, R), rg(20, 24, W), rg(50, 59, W)}},
		{"merge overlapping", []lk{{R, 0, 10}, {R, 5, 10}}, []lockRange{rg(0, 14, R)}},
		{"merge touching", []lk{{R, 0, 10}, {R, 10, 10}}, []lockRange{rg(0, 19, R)}},
		{"merge touching before", []lk{{R, 10, 10}, {R, 0, 10}}, []lockRange{rg(0, 19, R)}},
		{"no merge with gap", []lk{{R, 0, 10}, {R, 11, 10}}, []lockRange{rg(0, 9, R), rg(11, 20, R)}},
		{"no merge of other types", []lk{{R, 0, 10}, {W, 10, 10}}, []lockRange{rg(0, 9, R), rg(10, 19, W)}},
		{"bridge merges three", []lk{{W, 0, 10}, {W, 20, 10}, {W, 10, 10}}, []lockRange{rg(0, 29, W)}},
		{"cover swallows", []lk{{R, 5, 2}, {W, 10, 2}, {R, 20, 2}, {W, 0, 0}}, []lockRange{rg(0, eof, W)}},
		{"unlock middle splits", []lk{{W, 0, 100}, {U, 40, 20}}, []lockRange{rg(0, 39, W), rg(60, 99, W)}},
		{"unlock middle of len 0", []lk{{R, 0, 0}, {U, 10, 10}}, []lockRange{rg(0, 9, R), rg(20, eof, R)}},
		{"unlock head", []lk{{W, 0, 100}, {U, 0, 10}}, []lockRange{rg(10, 99, W)}},
		{"unlock tail to the end", []lk{{W, 0, 100}, {U, 50, 0}}, []lockRange{rg(0, 49, W)}},
		{"unlock over two", []lk{{W, 0, 10}, {R, 20, 10}, {U, 5, 20}}, []lockRange{rg(0, 4, W), rg(25, 29, R)}},
		{"convert middle", []lk{{W, 0, 100}, {R, 40, 20}},
			[]lockRange{rg(0, 39, W), rg(40, 59, R), rg(60, 99, W)}},
		{"convert head", []lk{{W, 0, 100}, {R, 0, 50}}, []lockRange{rg(0, 49, R), rg(50, 99, W)}},
		{"convert whole", []lk{{W, 0, 100}, {R, 0, 100}}, []lockRange{rg(0, 99, R)}},
		{"convert back merges", []lk{{W, 0, 100}, {R, 40, 20}, {W, 40, 20}}, []lockRange{rg(0, 99, W)}},
		{"convert over boundary merges with neighbour", []lk{{R, 0, 10}, {W, 10, 10}, {R, 5, 10}},
			[]lockRange{rg(0, 14, R), rg(15, 19, W)}},
		{"same type inside is a no-op", []lk{{R, 0, 100}, {R, 10, 10}}, []lockRange{rg(0, 99, R)}},
		{"len 0 over len 0", []lk{{R, 100, 0}, {W, 50, 0}}, []lockRange{rg(50, eof, W)}},
		{"len 0 partial convert", []lk{{R, 0, 0}, {W, 50, 0}}, []lockRange{rg(0, 49, R), rg(50, eof, W)}},
		{"last byte", []lk{{W, eof, 1}, {R, eof - 1, 1}}, []lockRange{rg(eof-1, eof-1, R), rg(eof, eof, W)}},
		{"last byte merges with len 0", []lk{{W, eof, 1}, {W, 10, 0}}, []lockRange{rg(10, eof, W)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rs []lockRange
			for _, op := range tc.ops {
				s, e := lockSpan(op.start, op.length)
				before := slices.Clone(rs)
				next := setRange(rs, op.t, s, e)
				if !slices.Equal(rs, before) {
					t.Fatalf("setRange modified its input")
				}
				rs = next
			}
			if !slices.Equal(rs, tc.want) {
				t.Fatalf("got %v, want %v", rs, tc.want)
			}
		})
	}
}

func TestLockRangeStartLen(t *testing.T) {
	for _, c := range []struct{ start, length int64 }{{0, 1}, {0, 0}, {7, 100}, {eof, 1}, {1, eof}, {eof - 9, 0}} {
		s, e := lockSpan(c.start, c.length)
		start, length := lockRange{s, e, LockRead}.startLen()
		ws, wl := c.start, c.length
		if c.start+c.length-1 == eof {
			wl = 0 // to the last byte is to the end
		}
		if start != ws || length != wl {
			t.Errorf("%d+%d: back as %d+%d", c.start, c.length, start, length)
		}
	}
}

// TestSetRangeModel checks setRange against a byte map of a small file,
// with random operations.
func TestSetRangeModel(t *testing.T) {
	const size = 64
	rnd := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		var rs []lockRange
		var model [size]LockType
		for step := range 20 {
			typ := LockType(rnd.IntN(3))
			s := uint64(rnd.IntN(size))
			e := s + uint64(rnd.IntN(size-int(s)))
			rs = setRange(rs, typ, s, e)
			for i := s; i <= e; i++ {
				model[i] = typ
			}
			// Compare.
			var got [size]LockType
			for i, r := range rs {
				if r.typ == LockUnlock || r.start > r.end {
					t.Fatalf("iter %d step %d: bad range %v", iter, step, r)
				}
				if i > 0 {
					p := rs[i-1]
					if p.end >= r.start {
						t.Fatalf("iter %d step %d: overlap or unsorted %v", iter, step, rs)
					}
					if p.end+1 == r.start && p.typ == r.typ {
						t.Fatalf("iter %d step %d: unmerged %v", iter, step, rs)
					}
				}
				for i := r.start; i <= r.end; i++ {
					got[i] = r.typ
				}
			}
			if got != model {
				t.Fatalf("iter %d step %d: %v\n got  %v\n want %v", iter, step, rs, fmt.Sprint(got), fmt.Sprint(model))
			}
		}
	}
}
