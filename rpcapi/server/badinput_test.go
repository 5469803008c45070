package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestBadInputTable sends one bad request per case over a real connection
// and checks the errno that comes back; the daemon must stay up and the
// volume consistent. (Framing errors that close the connection are in
// TestFramingLimits; the binary channel's broken frames in
// TestBinaryChannel; protocol-level JSON errors in TestProtocolErrors.)
func TestBadInputTable(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{MaxIOBytes: 1 << 20})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var dir, file, link wire.NewInodeResult
	rc.ok(wire.MethodMkdirPath, obj{"mount_id": id, "path": "/d", "mode": 0o755}, &dir)
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/d/f", "mode": 0o644}, &file)
	rc.ok(wire.MethodSymlinkPath, obj{"mount_id": id, "path": "/d/out", "target": "../../../../etc"}, &link)
	rc.ok(wire.MethodSymlinkPath, obj{"mount_id": id, "path": "/d/up", "target": "../../../.."}, nil)
	stale := dial(t, "tcp", d.TCPAddr).mount("default", 0).MountID
	rc.ok(wire.MethodUnmount, obj{"mount_id": stale}, nil)
	long := strings.Repeat("n", 256)
	longPath := "/" + strings.Repeat("a/", 2100)

	cases := []struct {
		name   string
		method string
		params string // JSON, %[1]d = mount id
		errno  string
		reason string
	}{
		{"invalid UTF-8 name", "create", `{"mount_id":%[1]d,"inode":1,"name":"bad` + "\xff\xfe" + `","mode":420}`, "EINVAL", ""},
		{"lone surrogate escape", "create", `{"mount_id":%[1]d,"inode":1,"name":"bad\ud800","mode":420}`, "EINVAL", ""},
		{"lone low surrogate escape", "create", `{"mount_id":%[1]d,"inode":1,"name":"bad\udc00x","mode":420}`, "EINVAL", ""},
		{"name with slash", "create", `{"mount_id":%[1]d,"inode":1,"name":"a/b","mode":420}`, "EINVAL", ""},
		{"name with NUL", "create", `{"mount_id":%[1]d,"inode":1,"name":"a\u0000b","mode":420}`, "EINVAL", ""},
		{"empty name", "create", `{"mount_id":%[1]d,"inode":1,"name":"","mode":420}`, "EINVAL", ""},
		{"dot name", "mkdir", `{"mount_id":%[1]d,"inode":1,"name":".","mode":493}`, "EINVAL", ""},
		{"dotdot name", "mkdir", `{"mount_id":%[1]d,"inode":1,"name":"..","mode":493}`, "EINVAL", ""},
		{"overlong name", "create", `{"mount_id":%[1]d,"inode":1,"name":"` + long + `","mode":420}`, "ENAMETOOLONG", ""},
		{"overlong path", "get_stat_path", `{"mount_id":%[1]d,"path":"` + longPath + `"}`, "ENAMETOOLONG", ""},
		{"overlong component", "create_path", `{"mount_id":%[1]d,"path":"/d/` + long + `","mode":420}`, "ENAMETOOLONG", ""},
		{"mode above the type bits", "create", `{"mount_id":%[1]d,"inode":1,"name":"m","mode":1048576}`, "EINVAL", ""},
		{"mode above the type bits, path", "mkdir_path", `{"mount_id":%[1]d,"path":"/m","mode":4294967295}`, "EINVAL", ""},
		{"create at root path", "create_path", `{"mount_id":%[1]d,"path":"/","mode":420}`, "EINVAL", ""},
		{"rmdir root", "rmdir_path", `{"mount_id":%[1]d,"path":"/"}`, "EINVAL", ""},
		{"inode never existed", "get_stat", `{"mount_id":%[1]d,"inode":987654321}`, "ENOENT", ""},
		{"inode 0", "get_stat", `{"mount_id":%[1]d,"inode":0}`, "ENOENT", ""},
		{"read of inode never existed", "read", `{"mount_id":%[1]d,"inode":987654321,"offset":0,"length":1}`, "ENOENT", ""},
		{"negative offset", "read", `{"mount_id":%[1]d,"inode":FILE,"offset":-1,"length":1}`, "EINVAL", ""},
		{"negative length", "read", `{"mount_id":%[1]d,"inode":FILE,"offset":0,"length":-5}`, "EINVAL", ""},
		{"huge length", "read", `{"mount_id":%[1]d,"inode":FILE,"offset":0,"length":18446744073709551615}`, "EINVAL", ""},
		{"length over max_io", "read", `{"mount_id":%[1]d,"inode":FILE,"offset":0,"length":1048577}`, "EINVAL", ""},
		{"offset past max file size", "write", `{"mount_id":%[1]d,"inode":FILE,"offset":18446744073709551615,"data":"eA=="}`, "EFBIG", ""},
		{"resize past max file size", "resize", `{"mount_id":%[1]d,"inode":FILE,"size":18446744073709551615}`, "EFBIG", ""},
		{"write to a directory", "write", `{"mount_id":%[1]d,"inode":1,"offset":0,"data":"eA=="}`, "EISDIR", ""},
		{"settime nsec out of range", "settime", `{"mount_id":%[1]d,"inode":FILE,"mtime":{"sec":1,"nsec":1000000000}}`, "EINVAL", ""},
		{"setattr unknown mask bit", "setattr", `{"mount_id":%[1]d,"inode":FILE,"mask":512}`, "EINVAL", ""},
		{"xattr name too long", "set_xattr", `{"mount_id":%[1]d,"inode":FILE,"name":"` + long + `","value":""}`, "ERANGE", ""},
		{"xattr both flags", "set_xattr", `{"mount_id":%[1]d,"inode":FILE,"name":"user.a","value":"","flags":3}`, "EINVAL", ""},
		{"mount options bit", "mount", `{"volume":"default","options":2,"user":"x","uid":1,"gid":1}`, "EINVAL", ""},
		{"mount unknown volume", "mount", `{"volume":"nope","user":"x","uid":1,"gid":1}`, "ENOENT", ""},
		{"mount volume with dots", "mount", `{"volume":"../default","user":"x","uid":1,"gid":1}`, "ENOENT", ""},
		{"forged mount id", "get_stat", `{"mount_id":123456789,"inode":1}`, "EINVAL", "bad_mount"},
		{"mount id too big", "get_stat", `{"mount_id":18446744073709551615,"inode":1}`, "EINVAL", "bad_mount"},
		{"stale mount id", "get_stat", fmt.Sprintf(`{"mount_id":%d,"inode":1}`, stale), "EINVAL", "bad_mount"},
		{"unmount twice", "unmount", fmt.Sprintf(`{"mount_id":%d}`, stale), "EINVAL", "bad_mount"},
		{"wrong type", "lookup", `{"mount_id":%[1]d,"inode":"1","name":"d"}`, "EINVAL", ""},
		{"missing member", "lookup", `{"mount_id":%[1]d,"inode":1}`, "EINVAL", ""},
		{"extra member", "lookup", `{"mount_id":%[1]d,"inode":1,"name":"d","x":1}`, "EINVAL", ""},
		{"data not base64", "write", `{"mount_id":%[1]d,"inode":FILE,"offset":0,"data":"***"}`, "EINVAL", ""},
		{"unknown method", "format_disk", `{}`, "ENOSYS", ""},
		{"link to a directory", "link", `{"mount_id":%[1]d,"inode":1,"name":"dl","target_inode":DIR}`, "EPERM", ""},
		{"rename dir into itself", "rename_path", `{"mount_id":%[1]d,"src_path":"/d","dst_path":"/d/sub"}`, "EINVAL", ""},
		{"symlink loop", "get_stat_path", `{"mount_id":%[1]d,"path":"/loop/x"}`, "ELOOP", ""},
	}
	rc.ok(wire.MethodSymlinkPath, obj{"mount_id": id, "path": "/loop", "target": "/loop"}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := strings.ReplaceAll(c.params, "FILE", fmt.Sprint(file.Inode))
			p = strings.ReplaceAll(p, "DIR", fmt.Sprint(dir.Inode))
			if strings.Contains(p, "%[1]d") {
				p = fmt.Sprintf(p, id)
			}
			rc.nextID++
			rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, rc.nextID, c.method, p))
			r := rc.recv()
			if r.Error == nil {
				t.Fatalf("%s %s: succeeded, want %s", c.method, p, c.errno)
			}
			if r.Error.Data.Name != c.errno || r.Error.Data.Reason != c.reason {
				t.Fatalf("%s: got %s reason %q (%s), want %s reason %q", c.method, r.Error.Data.Name, r.Error.Data.Reason, r.Error.Message, c.errno, c.reason)
			}
		})
	}

	// '..' and symlinks never leave the volume: they end at the root.
	var st wire.StatResult
	for _, p := range []string{"/../../..", "/d/../../..", "/d/up/", "/d/up/d/up/..", "/d/up/d/up/d/.."} {
		rc.ok(wire.MethodGetStatPath, obj{"mount_id": id, "path": p}, &st)
		if st.Stat.Ino != 1 {
			t.Errorf("%s resolves to inode %d, want the root", p, st.Stat.Ino)
		}
	}
	rc.fails(wire.MethodGetStatPath, obj{"mount_id": id, "path": "/d/out/passwd"}, "ENOENT", 2)
	// Still serving, and nothing was created by the bad calls.
	var rd wire.ReaddirResult
	rc.ok(wire.MethodReaddir, obj{"mount_id": id, "inode": 1, "prev_cookie": -1}, &rd)
	var names []string
	for _, e := range rd.Entries {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != ".,..,d,loop" {
		t.Errorf("root after the bad calls: %s", got)
	}
	d.Check(t)
}

// A valid surrogate pair (an emoji) is a fine name.
func TestSurrogatePairName(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "unix", d.UnixPath)
	id := rc.mount("default", 0).MountID
	var r wire.NewInodeResult
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"create","params":{"mount_id":%d,"inode":1,"name":"smile \ud83d\ude00","mode":420}}`, id))
	if rep := rc.recv(); rep.Error != nil {
		t.Fatalf("create with a surrogate pair: %+v", rep.Error)
	}
	rc.ok(wire.MethodLookupPath, obj{"mount_id": id, "path": "/smile 😀"}, &r)
}
