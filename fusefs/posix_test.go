package fusefs

import (
	"os"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// notPOSIX are the tests of posixtest.All that assert something Linux's
// own filesystems do not do, with the reason; they are skipped, and the
// behaviour they are about is tested in this package as ext4 has it.
var notPOSIX = map[string]string{
	"FcntlFlockLocksFile": "it expects a process's F_SETLK through a second descriptor of a file to conflict with " +
		"its own lock through the first; POSIX locks belong to the process, and ext4 grants it too " +
		"(TestLocksTwoProcesses checks both cases)",
}

// TestPosix runs go-fuse's POSIX suite (posixtest.All), every test in a
// directory of its own on one mount, with the default options and with the
// writeback cache.
func TestPosix(t *testing.T) {
	for _, mode := range []struct {
		name string
		o    Options
	}{{"default", Options{}}, {"writeback", Options{WritebackCache: true}}} {
		t.Run(mode.name, func(t *testing.T) {
			e := start(t, mode.o, daemontest.Options{})
			names := make([]string, 0, len(posixtest.All))
			for n := range posixtest.All {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				t.Run(n, func(t *testing.T) {
					if why := notPOSIX[n]; why != "" {
						t.Skip("not POSIX: " + why)
					}
					dir := e.path(mode.name + "-" + n)
					if err := os.Mkdir(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					posixtest.All[n](t, dir)
				})
			}
		})
	}
}
