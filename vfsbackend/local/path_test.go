package local

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// The data paths built by hand are those of the layout: <volume>/data/
// <low byte in 2 hex digits>/<inode in 16 hex digits>.
func TestDataPaths(t *testing.T) {
	for _, vol := range []string{"/v", "/tmp/some volume/x", "rel/vol", "/"} {
		var d dataStore
		d.init(vol, 1)
		for _, ino := range []vfsbackend.Ino{0, 1, 0xff, 0x100, 0x1234abcd, 1<<64 - 1} {
			sub := filepath.Join(filepath.Join(vol, "data"), fmt.Sprintf("%02x", uint8(ino)))
			if got := d.subdir(ino); got != sub {
				t.Errorf("subdir(%#x) in %q = %q, want %q", ino, vol, got, sub)
			}
			if got, want := d.path(ino), filepath.Join(sub, fmt.Sprintf("%016x", uint64(ino))); got != want {
				t.Errorf("path(%#x) in %q = %q, want %q", ino, vol, got, want)
			}
		}
	}
}
