package fusefs

import (
	"slices"
	"testing"
)

// TestParseGateways: gateway=ADDR adds a gateway each time it is given,
// across lists, after server=ADDR; an empty one is an error.
func TestParseGateways(t *testing.T) {
	c, err := ParseOptions("server=10.0.0.1:9450,gateway=10.0.0.2:9450,allow_other", "gateway=/run/b.sock")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "10.0.0.1:9450" || !slices.Equal(c.Gateways, []string{"10.0.0.2:9450", "/run/b.sock"}) {
		t.Errorf("server %q, gateways %q", c.Server, c.Gateways)
	}
	for _, bad := range []string{"gateway=", "gateway", "server"} {
		if _, err := ParseOptions(bad); err == nil {
			t.Errorf("ParseOptions(%q) accepted", bad)
		}
	}
}
