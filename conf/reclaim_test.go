package conf

import (
	"strings"
	"testing"
	"time"
)

func TestReclaimGrace(t *testing.T) {
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Server.ReclaimGrace; got != time.Minute {
		t.Errorf("default reclaim_grace %v", got)
	}
	const vol = "\n[[volume]]\nname = \"a\"\n"
	for _, tc := range []struct {
		val  string
		want time.Duration
		err  string
	}{
		{`"0s"`, 0, ""},
		{`"250ms"`, 250 * time.Millisecond, ""},
		{`"24h"`, 24 * time.Hour, ""},
		{`"25h"`, 0, `server.reclaim_grace: "25h" is longer than 24h0m0s`},
		{`"-1s"`, 0, `server.reclaim_grace: duration "-1s" must be positive`},
		{`"soon"`, 0, `server.reclaim_grace: invalid duration "soon"`},
		{`60`, 0, `reclaim_grace`},
	} {
		c, err := Parse([]byte("[server]\nreclaim_grace = " + tc.val + vol))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.val, err)
		case tc.err == "" && c.Server.ReclaimGrace != tc.want:
			t.Errorf("%s: got %v", tc.val, c.Server.ReclaimGrace)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.val, err, tc.err)
		}
	}
}
