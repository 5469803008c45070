package server_test

import (
	"fmt"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestSetattrSelectedFieldMissing: a field the setattr mask selects must
// be in the params. Left out (or null) it is EINVAL (-32602) and nothing
// changes, for every field and both forms; it used to set size, mode, uid
// or gid to 0. Fields the mask does not select may be left out, and a
// selected field may be 0.
func TestSetattrSelectedFieldMissing(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o640}, &f)
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": []byte("0123456789")}, nil)
	var before wire.StatResult
	rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": f.Inode}, &before)

	fields := []struct {
		name string
		bit  uint32
	}{
		{"size", wire.SetSize}, {"mode", wire.SetMode}, {"uid", wire.SetUID}, {"gid", wire.SetGID},
		{"atime", wire.SetAtime}, {"mtime", wire.SetMtime}, {"crtime", wire.SetCrtime},
	}
	forms := []struct{ method, target string }{
		{wire.MethodSetattr, fmt.Sprintf(`"inode":%d`, f.Inode)},
		{wire.MethodSetattrPath, `"path":"/f"`},
	}
	for _, form := range forms {
		for _, fld := range fields {
			for _, member := range []string{"", fmt.Sprintf(`,%q:null`, fld.name)} {
				rc.nextID++
				params := fmt.Sprintf(`{"mount_id":%d,%s,"mask":%d%s}`, id, form.target, fld.bit, member)
				rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, rc.nextID, form.method, params))
				r := rc.recv()
				switch {
				case r.Error == nil:
					t.Errorf("%s %s: succeeded with %s, want EINVAL", form.method, params, r.Result)
				case r.Error.Code != -32602 || r.Error.Data == nil || r.Error.Data.Name != "EINVAL":
					t.Errorf("%s %s: error %+v, want EINVAL (-32602)", form.method, params, r.Error)
				}
			}
		}
	}
	var after wire.StatResult
	rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": f.Inode}, &after)
	if after.Stat != before.Stat {
		t.Fatalf("failed setattr calls changed the file:\nbefore %+v\n after %+v", before.Stat, after.Stat)
	}

	// Selected fields given as 0 are set to 0; fields not selected may be
	// left out, or given and ignored.
	var sr wire.StatResult
	rc.ok(wire.MethodSetattr, obj{"mount_id": id, "inode": f.Inode, "mask": wire.SetSize | wire.SetUID | wire.SetGID | wire.SetMode,
		"size": 0, "uid": 0, "gid": 0, "mode": 0}, &sr)
	if sr.Stat.Size != 0 || sr.Stat.UID != 0 || sr.Stat.GID != 0 || sr.Stat.Mode != 0o100000 {
		t.Errorf("setattr to zeros: %+v", sr.Stat)
	}
	rc.ok(wire.MethodSetattrPath, obj{"mount_id": id, "path": "/f", "mask": wire.SetMode, "mode": 0o600, "size": 99}, &sr)
	if sr.Stat.Size != 0 || sr.Stat.Mode != 0o100600 {
		t.Errorf("setattr_path with an unselected size: %+v", sr.Stat)
	}
	rc.ok(wire.MethodSetattr, obj{"mount_id": id, "inode": f.Inode, "mask": 0}, &sr)
	d.Check(t)
}
