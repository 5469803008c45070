package server

import (
	"testing"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestOneMethodTable: every binary opcode is a method of the table, whose
// policy (which calls change the volume) the binary channel follows.
func TestOneMethodTable(t *testing.T) {
	wantMutates := map[uint16]bool{
		wire.OpRead: false, wire.OpWrite: true, wire.OpLookup: false, wire.OpGetStat: false,
		wire.OpCreate: true, wire.OpUnlink: true, wire.OpReaddirPlus: false, wire.OpFlush: false,
		wire.OpLookupCI:   false,
		wire.OpCreateOpen: true,
	}
	for op, want := range wantMutates {
		m, ok := methods[wire.OpName(op)]
		if !ok {
			t.Errorf("opcode %d (%s) is not in the method table", op, wire.OpName(op))
			continue
		}
		if m.mutates != want {
			t.Errorf("%s: mutates %v, want %v", wire.OpName(op), m.mutates, want)
		}
	}
	for op := uint16(0); op < 64; op++ {
		if _, known := wantMutates[op]; known || op == wire.OpAuth {
			continue
		}
		if name := wire.OpName(op); name != "" {
			if _, ok := methods[name]; ok {
				t.Errorf("opcode %d names method %s, missing from this test", op, name)
			}
		}
	}
}

// TestSharedChecks: the checks both channels call.
func TestSharedChecks(t *testing.T) {
	for _, c := range []struct {
		mode uint64
		ok   bool
	}{{0o644, true}, {0o7777, true}, {0o100644, true}, {0o177777, true}, {0o200000, false}, {1 << 40, false}} {
		if err := checkMode("create", c.mode); (err == nil) != c.ok {
			t.Errorf("checkMode(%#o) = %v", c.mode, err)
		}
	}
	for _, c := range []struct {
		ask  uint64
		want int
	}{{0, readdirDefault}, {1, 1}, {readdirMax, readdirMax}, {readdirMax + 1, readdirMax}, {1 << 40, readdirMax}} {
		if got := readdirBatch(c.ask); got != c.want {
			t.Errorf("readdirBatch(%d) = %d, want %d", c.ask, got, c.want)
		}
	}
}
