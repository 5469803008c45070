package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// adminExample returns the example of PROTOCOL.md, "Administrative
// methods": its request and reply lines, in order.
func adminExample(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(doc)
	i := strings.Index(sec, "### Administrative methods")
	if i < 0 {
		t.Fatal(`PROTOCOL.md has no "Administrative methods"`)
	}
	sec = sec[i:]
	sec = sec[strings.Index(sec, "```\n")+4:]
	sec = sec[:strings.Index(sec, "```")]
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(sec), "\n") {
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

// TestAdminExample sends the literal example of PROTOCOL.md,
// "Administrative methods", to a daemon set up as the example says, and
// checks the literal replies; only the fsid (random) and the uptime are
// taken from the real replies.
func TestAdminExample(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Volumes: []daemontest.Volume{
		{Name: "default", Engine: "memory", CapacityBytes: 67108864}}})
	rc := dial(t, "tcp", d.TCPAddr)
	rc.mount("default", 0)
	lines := adminExample(t)
	if len(lines) != 4 {
		t.Fatalf("example of %d lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	fsid := regexp.MustCompile(`"fsid":\d+`)
	uptime := regexp.MustCompile(`"uptime_sec":\d+`)
	for i := 0; i < len(lines); i += 2 {
		req, want := lines[i], lines[i+1]
		if !strings.HasPrefix(req, "--> ") || !strings.HasPrefix(want, "<-- ") {
			t.Fatalf("example lines %q, %q", req, want)
		}
		rc.sendRaw(req[4:])
		got, err := rc.readMsg()
		if err != nil {
			t.Fatal(err)
		}
		want = want[4:]
		if m := fsid.Find(got); m != nil {
			want = fsid.ReplaceAllString(want, string(m))
		}
		if m := uptime.Find(got); m != nil {
			want = uptime.ReplaceAllString(want, string(m))
		}
		sameJSON(t, req[4:], got, want)
	}
}

// TestAdminMethods checks volumes and status beyond the example: usage
// and mounts follow what clients do, several volumes come in
// configuration order, and a volume whose directory is removed is
// reported failed.
func TestAdminMethods(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{Volumes: []daemontest.Volume{
		{Name: "default", Engine: "memory", CapacityBytes: 64 << 20},
		{Name: "archive", CapacityBytes: 1 << 30}}})
	rc := dial(t, "unix", d.UnixPath)
	var vr wire.VolumesResult
	rc.ok(wire.MethodVolumes, obj{}, &vr)
	if len(vr.Volumes) != 2 || vr.Volumes[0].Name != "default" || vr.Volumes[1].Name != "archive" {
		t.Fatalf("volumes %+v", vr)
	}
	for _, v := range vr.Volumes {
		if v.Mounts != 0 || v.SizeBytes == 0 || v.Inodes == 0 || v.InodesUsed != 1 || v.Error != "" ||
			v.UsedBytes+v.AvailBytes > v.SizeBytes || v.InodesUsed+v.InodesFree != v.Inodes {
			t.Errorf("fresh volume %+v", v)
		}
	}
	before := vr.Volumes[0]

	// Two mounts of default, one of them with a 1 MiB file open.
	id := rc.mount("default", 0).MountID
	rc2 := dial(t, "tcp", d.TCPAddr)
	rc2.mount("default", 0)
	var f wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/f", "mode": 0o644}, &f)
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": f.Inode, "offset": 0, "data": make([]byte, 1<<20)}, nil)
	var o wire.OpenResult
	rc.ok(wire.MethodOpen, obj{"mount_id": id, "inode": f.Inode}, &o)
	rc.ok(wire.MethodVolumes, obj{}, &vr)
	v := vr.Volumes[0]
	if v.Mounts != 2 || v.UsedBytes < before.UsedBytes+1<<20 || v.AvailBytes > before.AvailBytes-1<<20 ||
		v.InodesUsed != 2 || vr.Volumes[1].Mounts != 0 {
		t.Errorf("after a mount and a write: %+v (before %+v)", vr.Volumes, before)
	}
	var st wire.StatusResult
	rc.ok(wire.MethodStatus, obj{}, &st)
	if st.Version != wire.Version || !strings.HasPrefix(st.Server, "proxyfsd ") || st.Connections != 2 ||
		st.Mounts != 2 || st.OpenHandles != 1 || len(st.Volumes) != 2 {
		t.Errorf("status %+v", st)
	}
	for _, vs := range st.Volumes {
		if vs.State != wire.VolumeOK || vs.Error != "" {
			t.Errorf("volume status %+v", vs)
		}
	}
	// The params must be an object without members.
	rc.fails(wire.MethodStatus, obj{"mount_id": id}, "EINVAL", -32602)

	// archive's directory goes away under the daemon.
	dir := filepath.Join(d.DataDir, "archive")
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	rc.ok(wire.MethodStatus, obj{}, &st)
	if a := st.Volumes[1]; a.Name != "archive" || a.State != wire.VolumeFailed || !strings.Contains(a.Error, "volume directory") {
		t.Errorf("status of a volume whose directory moved: %+v", a)
	}
	if st.Volumes[0].State != wire.VolumeOK {
		t.Errorf("default: %+v", st.Volumes[0])
	}
	raw := rc.call(wire.MethodStatus, obj{})
	var m map[string]any
	if err := json.Unmarshal(raw.Result, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["uptime_sec"]; !ok {
		t.Errorf("no uptime_sec in %s", raw.Result)
	}
	if err := os.Rename(dir+".moved", dir); err != nil {
		t.Fatal(err)
	}
}
