package wire

import (
	"encoding/json"
	"testing"
)

// Attrs.Fields sends every field the mask selects, zeros included, and no
// other: the server rejects a selected field that is missing.
func TestAttrsFields(t *testing.T) {
	for _, c := range []struct {
		a    Attrs
		want string
	}{
		{Attrs{Mask: SetSize | SetUID}, `{"mount_id":5,"inode":2,"mask":5,"size":0,"uid":0}`},
		{Attrs{Mask: SetMode | SetGID, Mode: 0o644, Size: 9, UID: 3}, `{"mount_id":5,"inode":2,"mask":10,"mode":420,"gid":0}`},
		{Attrs{Mask: SetMtime | SetCrtime, Atime: &Timespec{Sec: 1}, Mtime: &Timespec{Sec: 2, Nsec: 3}},
			`{"mount_id":5,"inode":2,"mask":96,"mtime":{"sec":2,"nsec":3}}`}, // crtime nil: the server says EINVAL
		{Attrs{}, `{"mount_id":5,"inode":2,"mask":0}`},
	} {
		b, err := json.Marshal(SetattrParams{MountID: 5, Inode: 2, SetattrFields: c.a.Fields()})
		if err != nil || string(b) != c.want {
			t.Errorf("%+v: %s, %v; want %s", c.a, b, err, c.want)
		}
	}
}
