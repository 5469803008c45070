package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// TestAccessLogOption: [log] access records every call on both channels (peer,
// principal, uid, method, inode or path, result) whatever log.level
// says: into a file of JSON lines, or (access = true) into the daemon's
// log.
func TestAccessLogOption(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "access.log")
	d := daemontest.Start(t, daemontest.Options{NoTCP: true, LogLevel: "warn", LogAccess: path})
	ctx := context.Background()
	c := rootClient(t, d.UnixPath)
	m, err := c.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ChmodPath(ctx, "/", 0o777); err != nil {
		t.Fatal(err)
	}
	st, err := m.As(client.Identity{UID: 1000, GID: 1000}).CreatePath(ctx, "/secret", 0o600) // JSON
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write(ctx, st.Ino, []byte("abc"), 0); err != nil { // binary
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := m.As(client.Identity{UID: bob, GID: bob}).Read(ctx, st.Ino, buf, 0); errnoName(err) != "permission denied" {
		t.Fatalf("bob reads alice's file: %v", err)
	}

	// A call's line is written after its reply: wait for the last ones
	// (the write's line may come after the read's).
	var b []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"binary read"`) && strings.Contains(string(b), `"binary write"`) {
			break
		}
	}
	type line struct {
		Msg       string `json:"msg"`
		Logger    string `json:"logger"`
		Method    string `json:"method"`
		Peer      string `json:"peer"`
		Principal string `json:"principal"`
		UID       *int   `json:"uid"`
		AsUID     *int   `json:"as_uid"`
		Inode     uint64 `json:"inode"`
		Path      string `json:"path"`
		Errno     string `json:"errno"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		lines = append(lines, x)
	}
	find := func(method string, ok func(line) bool) *line {
		for i := range lines {
			if lines[i].Method == method && ok(lines[i]) {
				return &lines[i]
			}
		}
		t.Errorf("no %s line in the access log:\n%s", method, b)
		return nil
	}
	if l := find("mount", func(line) bool { return true }); l != nil && (l.Msg != "call" || l.Logger != "access" || !strings.Contains(l.Principal, "uid 0") || l.UID == nil || *l.UID != 0) {
		t.Errorf("mount line: %+v", *l)
	}
	if l := find("create_path", func(l line) bool { return l.Path == "/secret" }); l != nil && (l.AsUID == nil || *l.AsUID != 1000 || l.UID == nil || *l.UID != 0 || l.Errno != "") {
		t.Errorf("create_path line: %+v", *l)
	}
	find("binary write", func(l line) bool { return l.Inode == st.Ino && l.Errno == "" && l.Peer != "" })
	if l := find("binary read", func(l line) bool { return l.Inode == st.Ino }); l != nil && (l.Errno != "EACCES" || l.AsUID == nil || *l.AsUID != bob) {
		t.Errorf("refused READ line: %+v", *l)
	}
	if strings.Contains(d.Logs(), `"call"`) || strings.Contains(d.Logs(), "\tcall\t") {
		t.Errorf("call lines in the daemon's warn-level log:\n%s", d.Logs())
	}

	// access = true: into the daemon's log, at level warn too.
	d.RestartWith(func(o *daemontest.Options) { o.LogAccess = "true" })
	c2 := rootClient(t, d.UnixPath)
	m2, err := c2.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.LookupPath(ctx, "/secret"); err != nil {
		t.Fatal(err)
	}
	// The daemon's output reaches d.Logs through a pipe: wait for it.
	logs := d.Logs()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs, `"method": "lookup_path"`); time.Sleep(10 * time.Millisecond) {
		logs = d.Logs()
	}
	if !strings.Contains(logs, "access\tcall") || !strings.Contains(logs, `"method": "lookup_path"`) {
		t.Errorf("no access lines in the daemon's log:\n%s", logs)
	}
}
