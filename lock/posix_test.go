package lock

import (
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// step is one SetLk and the errno it must give.
type step struct {
	o          Owner
	t          Type
	start, len int64
	want       syscall.Errno
}

// held is an expected lock in Locks' answer.
type held struct {
	o          Owner
	t          Type
	start, len int64
}

func (h held) String() string { return fmt.Sprintf("%s:%v[%d,+%d)", h.o.ID, h.t, h.start, h.len) }

func heldOf(ls []Lock) []held {
	out := []held{}
	for _, l := range ls {
		out = append(out, held{l.Owner, l.Type, l.Start, l.Len})
	}
	return out
}

// TestSetLkRules runs sequences of SetLk and checks each answer and the
// locks held after: conflicts between owners by type and range, and one
// owner's replace, merge, split and convert rules.
func TestSetLkRules(t *testing.T) {
	const E = MaxOffset
	tests := []struct {
		name  string
		steps []step
		want  []held
	}{
		{"read read share", []step{{ownA, Read, 0, 10, 0}, {ownB, Read, 5, 10, 0}},
			[]held{{ownA, Read, 0, 10}, {ownB, Read, 5, 10}}},
		{"read then write conflicts", []step{{ownA, Read, 0, 10, 0}, {ownB, Write, 9, 10, syscall.EAGAIN}},
			[]held{{ownA, Read, 0, 10}}},
		{"write then read conflicts", []step{{ownA, Write, 0, 10, 0}, {ownB, Read, 0, 1, syscall.EAGAIN}},
			[]held{{ownA, Write, 0, 10}}},
		{"write write conflicts", []step{{ownA, Write, 5, 5, 0}, {ownB, Write, 0, 6, syscall.EAGAIN}},
			[]held{{ownA, Write, 5, 5}}},
		{"adjacent ranges do not conflict", []step{{ownA, Write, 0, 10, 0}, {ownB, Write, 10, 10, 0}},
			[]held{{ownA, Write, 0, 10}, {ownB, Write, 10, 10}}},
		{"len 0 runs to end of file", []step{{ownA, Write, 100, 0, 0}, {ownB, Read, E, 1, syscall.EAGAIN}, {ownB, Read, 0, 100, 0}},
			[]held{{ownB, Read, 0, 100}, {ownA, Write, 100, 0}}},
		{"range to max offset is len 0", []step{{ownA, Write, 5, E - 4, 0}},
			[]held{{ownA, Write, 5, 0}}},
		{"other mount other handle same id conflicts", []step{{ownA, Write, 0, 1, 0}, {Owner{Mount: 1, Handle: 9, ID: "a"}, Write, 0, 1, syscall.EAGAIN}},
			[]held{{ownA, Write, 0, 1}}},
		{"same owner never conflicts", []step{{ownA, Write, 0, 10, 0}, {ownA, Write, 5, 10, 0}, {ownA, Read, 0, 0, 0}},
			[]held{{ownA, Read, 0, 0}}},
		{"adjacent same type merge", []step{{ownA, Read, 0, 10, 0}, {ownA, Read, 10, 10, 0}, {ownA, Read, 30, 5, 0}, {ownA, Read, 20, 10, 0}},
			[]held{{ownA, Read, 0, 35}}},
		{"overlapping same type merge", []step{{ownA, Write, 0, 10, 0}, {ownA, Write, 5, 10, 0}},
			[]held{{ownA, Write, 0, 15}}},
		{"adjacent other type stay apart", []step{{ownA, Read, 0, 10, 0}, {ownA, Write, 10, 10, 0}},
			[]held{{ownA, Read, 0, 10}, {ownA, Write, 10, 10}}},
		{"read over middle of write converts it", []step{{ownA, Write, 0, 30, 0}, {ownA, Read, 10, 10, 0}},
			[]held{{ownA, Write, 0, 10}, {ownA, Read, 10, 10}, {ownA, Write, 20, 10}}},
		{"write over read upgrades", []step{{ownA, Read, 0, 30, 0}, {ownA, Write, 0, 0, 0}},
			[]held{{ownA, Write, 0, 0}}},
		{"upgrade blocked by other reader changes nothing", []step{{ownA, Read, 0, 30, 0}, {ownB, Read, 25, 1, 0}, {ownA, Write, 0, 30, syscall.EAGAIN}},
			[]held{{ownA, Read, 0, 30}, {ownB, Read, 25, 1}}},
		{"unlock middle splits", []step{{ownA, Write, 0, 30, 0}, {ownA, Unlock, 10, 10, 0}},
			[]held{{ownA, Write, 0, 10}, {ownA, Write, 20, 10}}},
		{"unlock to eof trims", []step{{ownA, Read, 0, 0, 0}, {ownA, Unlock, 50, 0, 0}},
			[]held{{ownA, Read, 0, 50}}},
		{"unlock over several", []step{{ownA, Read, 0, 5, 0}, {ownA, Write, 10, 5, 0}, {ownA, Read, 20, 5, 0}, {ownA, Unlock, 3, 19, 0}},
			[]held{{ownA, Read, 0, 3}, {ownA, Read, 22, 3}}},
		{"unlock of nothing succeeds", []step{{ownA, Unlock, 0, 0, 0}, {ownB, Write, 0, 5, 0}, {ownA, Unlock, 0, 0, 0}},
			[]held{{ownB, Write, 0, 5}}},
		{"unlock drops only own", []step{{ownA, Read, 0, 10, 0}, {ownB, Read, 0, 10, 0}, {ownA, Unlock, 0, 0, 0}},
			[]held{{ownB, Read, 0, 10}}},
		{"gap between others' locks is free", []step{{ownA, Write, 0, 10, 0}, {ownB, Write, 20, 10, 0}, {ownC, Write, 10, 10, 0}, {ownC, Write, 9, 2, syscall.EAGAIN}},
			[]held{{ownA, Write, 0, 10}, {ownC, Write, 10, 10}, {ownB, Write, 20, 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTest(Options{})
			for i, s := range tc.steps {
				err := m.SetLk(rq(fileA, s.o, s.t, s.start, s.len))
				if errnoOf(err) != s.want {
					t.Fatalf("step %d (%v): %v, want errno %d", i, s, err, s.want)
				}
			}
			if got := heldOf(m.Locks(fileA)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("locks %v, want %v", got, tc.want)
			}
			if got := m.Locks(fileB); got != nil {
				t.Fatalf("other file has locks %v", got)
			}
		})
	}
}

// TestFilesIndependent checks that locks on different keys (another inode,
// the same inode of another volume) do not conflict.
func TestFilesIndependent(t *testing.T) {
	m, _ := newTest(Options{})
	for _, k := range []Key{fileA, fileB, fileC} {
		if err := m.SetLk(rq(k, Owner{Mount: k.Inode, ID: k.Volume}, Write, 0, 0)); err != nil {
			t.Fatalf("%v: %v", k, err)
		}
	}
}

// TestGetLk checks F_GETLK's answers.
func TestGetLk(t *testing.T) {
	m, _ := newTest(Options{})
	for _, s := range []step{{ownA, Read, 100, 10, 0}, {ownB, Write, 50, 10, 0}, {ownC, Write, 200, 0, 0}, {ownA, Read, 150, 10, 0}} {
		if err := m.SetLk(rq(fileA, s.o, s.t, s.start, s.len)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		o          Owner
		t          Type
		start, len int64
		want       Lock
	}{
		{"none in a gap", ownD, Write, 60, 40, Lock{Type: Unlock}},
		{"read shares with read", ownD, Read, 100, 60, Lock{Type: Unlock}},
		{"write finds the first by start", ownD, Write, 0, 0, Lock{Type: Write, Start: 50, Len: 10, Owner: ownB}},
		{"read finds a write", ownD, Read, 55, 1, Lock{Type: Write, Start: 50, Len: 10, Owner: ownB}},
		{"write finds a read", ownD, Write, 109, 1, Lock{Type: Read, Start: 100, Len: 10, Owner: ownA}},
		{"own locks never conflict", ownA, Write, 100, 60, Lock{Type: Unlock}},
		{"to eof lock reported with len 0", ownD, Read, 1 << 40, 1, Lock{Type: Write, Start: 200, Len: 0, Owner: ownC}},
		{"owner of the conflict sees the others", ownB, Write, 0, 120, Lock{Type: Read, Start: 100, Len: 10, Owner: ownA}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.GetLk(rq(fileA, tc.o, tc.t, tc.start, tc.len))
			if err != nil || got != tc.want {
				t.Fatalf("GetLk = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if got, err := m.GetLk(rq(fileB, ownA, Write, 0, 0)); err != nil || got.Type != Unlock {
		t.Fatalf("GetLk of a file without locks = %+v, %v", got, err)
	}
}

// TestBadInput checks the EINVAL cases of every entry point.
func TestBadInput(t *testing.T) {
	long := Owner{Mount: 1, ID: strings.Repeat("x", MaxOwnerID+1)}
	tests := []struct {
		name string
		r    Request
		want syscall.Errno // for SetLk
	}{
		{"negative start", rq(fileA, ownA, Read, -1, 1), syscall.EINVAL},
		{"negative len", rq(fileA, ownA, Read, 10, -5), syscall.EINVAL},
		{"end past max offset", rq(fileA, ownA, Read, MaxOffset, 2), syscall.EINVAL},
		{"start+len overflows", rq(fileA, ownA, Write, MaxOffset-1, MaxOffset), syscall.EINVAL},
		{"bad type", rq(fileA, ownA, Type(3), 0, 1), syscall.EINVAL},
		{"owner id too long", rq(fileA, long, Read, 0, 1), syscall.EINVAL},
		{"last byte ok", rq(fileA, ownA, Write, MaxOffset, 1), 0},
		{"start at max offset to eof ok", rq(fileA, ownB, Write, 0, MaxOffset), 0},
		{"owner id of max length ok", rq(fileB, Owner{ID: strings.Repeat("x", MaxOwnerID)}, Read, 0, 1), 0},
	}
	m, _ := newTest(Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.SetLk(tc.r); errnoOf(err) != tc.want {
				t.Fatalf("SetLk: %v, want errno %d", err, tc.want)
			}
			if tc.want == 0 {
				return
			}
			if err := m.SetLkW(bg, tc.r); errnoOf(err) != tc.want {
				t.Fatalf("SetLkW: %v, want errno %d", err, tc.want)
			}
			if _, err := m.GetLk(tc.r); errnoOf(err) != tc.want {
				t.Fatalf("GetLk: %v, want errno %d", err, tc.want)
			}
		})
	}
	if _, err := m.GetLk(rq(fileA, ownA, Unlock, 0, 0)); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("GetLk of Unlock: %v, want EINVAL", err)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Type(9)}); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("Flock bad type: %v, want EINVAL", err)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: long, Type: Read}); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("Flock long owner: %v, want EINVAL", err)
	}
	if _, err := ParseType("exclusive"); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("ParseType: %v", err)
	}
	for op, ty := range map[string]Type{"shared": Read, "exclusive": Write, "unlock": Unlock} {
		if got, err := ParseFlockOp(op); err != nil || got != ty {
			t.Fatalf("ParseFlockOp(%q) = %v, %v", op, got, err)
		}
	}
	if _, err := ParseFlockOp("read"); errnoOf(err) != syscall.EINVAL {
		t.Fatalf("ParseFlockOp: %v", err)
	}
	for _, ty := range []Type{Unlock, Read, Write} {
		if got, err := ParseType(ty.String()); err != nil || got != ty {
			t.Fatalf("ParseType(%q) = %v, %v", ty.String(), got, err)
		}
	}
}

// TestEmptyFilesForgotten checks that a file whose last lock goes leaves
// no state behind.
func TestEmptyFilesForgotten(t *testing.T) {
	m, _ := newTest(Options{})
	for i := range 100 {
		k := Key{Volume: "v", Inode: uint64(i)}
		if err := m.SetLk(rq(k, ownA, Write, 0, 10)); err != nil {
			t.Fatal(err)
		}
		if err := m.SetLk(rq(k, ownA, Unlock, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.GetLk(rq(k, ownB, Write, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Stats(); s.Files != 0 || m.Held(ownA) != 0 || m.HeldByMount(ownA.Mount) != 0 {
		t.Fatalf("stats %+v, held %d", s, m.Held(ownA))
	}
}
