package lock

import (
	"sync/atomic"
	"testing"
)

// BenchmarkSetLkUnlockParallel takes and releases a lock on a file of its
// own per goroutine: the uncontended path, across shards.
func BenchmarkSetLkUnlockParallel(b *testing.B) {
	m := New(Options{})
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		n := next.Add(1)
		k := Key{Volume: "v", Inode: n}
		o := Owner{Mount: n, Handle: 1}
		for pb.Next() {
			if err := m.SetLk(Request{Key: k, Owner: o, Type: Write, Start: 0, Len: 100}); err != nil {
				b.Fatal(err)
			}
			if err := m.SetLk(Request{Key: k, Owner: o, Type: Unlock}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkManyRanges measures, on a file where one owner holds
// DefaultMaxPerOwner-1 disjoint ranges, another owner's lock and unlock
// and the full owner's change of one range in the middle.
func BenchmarkManyRanges(b *testing.B) {
	m := New(Options{})
	const n = DefaultMaxPerOwner - 1
	for i := range n {
		if err := m.SetLk(rq(fileA, ownA, Read, int64(4*i), 2)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("other owner", func(b *testing.B) {
		for b.Loop() {
			if err := m.SetLk(rq(fileA, ownB, Read, 2000, 10)); err != nil {
				b.Fatal(err)
			}
			if err := m.SetLk(rq(fileA, ownB, Unlock, 0, 0)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full owner", func(b *testing.B) {
		for b.Loop() {
			if err := m.SetLk(rq(fileA, ownA, Write, 2000, 1)); err != nil { // splits
				b.Fatal(err)
			}
			if err := m.SetLk(rq(fileA, ownA, Read, 2000, 1)); err != nil { // merges back
				b.Fatal(err)
			}
		}
	})
}
