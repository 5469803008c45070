package version

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestOneVersion checks that the default version, the VERSION file and
// proxyfs.h's PROXYFS_VERSION_* agree, and that the docs show it.
func TestOneVersion(t *testing.T) {
	b, err := os.ReadFile("../../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	file := strings.TrimSpace(string(b))
	if Version != file {
		t.Errorf("version.Version %q, VERSION file %q", Version, file)
	}
	h, err := os.ReadFile("../../proxyfs.h")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, n := range []string{"MAJOR", "MINOR", "PATCH"} {
		m := regexp.MustCompile(`#define PROXYFS_VERSION_` + n + ` (\d+)`).FindSubmatch(h)
		if m == nil {
			t.Fatalf("proxyfs.h has no PROXYFS_VERSION_%s", n)
		}
		parts = append(parts, string(m[1]))
	}
	if got := strings.Join(parts, "."); got != file {
		t.Errorf("proxyfs.h says %s, VERSION %s", got, file)
	}
	p, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`proxyfsd (\d+\.\d+\.\d+)`).FindAllSubmatch(p, -1) {
		if string(m[1]) != file {
			t.Errorf("PROTOCOL.md shows proxyfsd %s, VERSION %s", m[1], file)
		}
	}
	if String() != Version {
		t.Errorf("String() = %q without a commit", String())
	}
}
