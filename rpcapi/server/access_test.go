package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestAccessLog checks that the debug access line of a call says who did
// what: the peer, the mount's user and uid, and the path or name, on both
// channels.
func TestAccessLog(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	// The volume's root is alice's (a new volume's root is root's).
	admin := rc.mount("default", 0)
	rc.ok(wire.MethodChownPath, obj{"mount_id": admin.MountID, "path": "/", "uid": 1234, "gid": 1234}, nil)
	var m wire.MountResult
	rc.ok(wire.MethodMount, obj{"volume": "default", "user": "alice", "uid": 1234, "gid": 1234}, &m)
	rc.ok(wire.MethodCreatePath, obj{"mount_id": m.MountID, "path": "/who-did-this", "mode": 0o644}, nil)
	bc := dialBin(t, "unix", d.UnixPath)
	name := "binary-name"
	bc.request(wire.RequestHeader{Opcode: wire.OpLookup, ID: 1, MountID: m.MountID, Inode: 1, Length: uint32(len(name))}, []byte(name))
	if h, _ := bc.reply(); h.Errno != 2 {
		t.Fatalf("binary lookup: %+v", h)
	}
	want := map[string]func(map[string]any) bool{
		"create_path": func(l map[string]any) bool {
			return strings.HasPrefix(l["peer"].(string), "127.0.0.1:") && l["path"] == "/who-did-this"
		},
		"binary lookup": func(l map[string]any) bool { return l["name"] == name && l["peer"] != nil },
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(want) > 0 && time.Now().Before(deadline) {
		for _, line := range strings.Split(d.Logs(), "\n") {
			i := strings.Index(line, "\tcall\t")
			if i < 0 {
				continue
			}
			var l map[string]any
			if json.Unmarshal([]byte(line[i+len("\tcall\t"):]), &l) != nil {
				continue
			}
			method, _ := l["method"].(string)
			if ok := want[method]; ok != nil && l["user"] == "alice" && l["uid"] == float64(1234) && ok(l) {
				delete(want, method)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(want) > 0 {
		t.Fatalf("no access line with peer, user, uid and path/name for %v in:\n%s", want, d.Logs())
	}
}
