package fusefs

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// The users of TestCallerIdentity.
const (
	aliceUID = 4301
	bobUID   = 4302
	groupGID = 4310 // a group alice is in as a supplementary group
)

// needAsUser skips t unless asUser can run: as root (why says what for),
// with /usr/bin/python3.
func needAsUser(t *testing.T, why string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root " + why)
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
}

// asUser runs a Python script (/usr/bin/python3) in dir as uid:gid with
// the supplementary groups groups (syscall.Credential), and returns its
// output and error.
func asUser(t *testing.T, dir string, uid, gid uint32, groups []uint32, script string) (string, error) {
	t.Helper()
	cmd := pyAs(dir, uid, gid, groups, script)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// pyAs is the command of asUser. The script changes to dir itself: a
// child that the test process starts in a directory on the mount would
// wait, between fork and exec, for a FUSE request that the same process
// serves while its fork holds syscall.ForkLock (a deadlock).
func pyAs(dir string, uid, gid uint32, groups []uint32, script string) *exec.Cmd {
	cmd := exec.Command("/usr/bin/python3", "-c", "import os; os.chdir("+strconv.Quote(dir)+")\n"+script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	return cmd
}

// TestCallerIdentity: without default_permissions, the server checks each
// caller (the FUSE request's uid, gid and groups) itself, with open-time
// semantics for open files: processes of two users (alice, bob) use the
// mount at once.
func TestCallerIdentity(t *testing.T) {
	needAsUser(t, "to run processes as other users")
	e := start(t, Options{}, daemontest.Options{})
	if e.fs.MountOptions().Options != nil {
		for _, o := range e.fs.MountOptions().Options {
			if o == "default_permissions" {
				t.Fatal("default_permissions without asking for it")
			}
		}
	}
	shared := e.path("shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil { // the umask took some bits
		t.Fatal(err)
	}
	alice := func(script string) (string, error) {
		return asUser(t, shared, aliceUID, aliceUID, []uint32{groupGID}, script)
	}
	bob := func(script string) (string, error) {
		return asUser(t, shared, bobUID, bobUID, nil, script)
	}
	must := func(who string) func(string, error) string {
		return func(out string, err error) string {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v\n%s", who, err, out)
			}
			return out
		}
	}

	// A file alice creates is alice's; bob's 0600 file is not hers to read.
	must("alice creates")(alice(`
import os
open("a", "w").write("alice's")
st = os.stat("a")
print(st.st_uid, st.st_gid)`))
	if st, err := os.Stat(e.path("shared/a")); err != nil || st.Sys().(*syscall.Stat_t).Uid != aliceUID || st.Sys().(*syscall.Stat_t).Gid != aliceUID {
		t.Fatalf("alice's file: %v %v", st, err)
	}
	must("bob creates 0600")(bob(`
import os
fd = os.open("b", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
os.write(fd, b"bob's secret")
os.close(fd)`))
	out := must("alice reads bob's 0600 file")(alice(`
try:
    open("b").read()
    print("read")
except PermissionError:
    print("EACCES")`))
	if out != "EACCES" {
		t.Fatalf("alice reads bob's 0600 file: %q", out)
	}
	if out := must("bob reads his file")(bob(`print(open("b").read())`)); out != "bob's secret" {
		t.Fatalf("bob reads his file: %q", out)
	}

	// Supplementary groups count: a 0640 file of bob's group groupGID is
	// readable by alice (in the group), not by bob's neighbour.
	if err := os.WriteFile(e.path("shared/grp"), []byte("group data"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.path("shared/grp"), bobUID, groupGID); err != nil {
		t.Fatal(err)
	}
	if out := must("alice reads through her group")(alice(`print(open("grp").read())`)); out != "group data" {
		t.Fatalf("alice reads through her supplementary group: %q", out)
	}
	out, err := asUser(t, shared, aliceUID, aliceUID, nil, `open("grp").read()`)
	if err == nil || !strings.Contains(out, "PermissionError") {
		t.Fatalf("alice without the group reads the 0640 file: %q %v", out, err)
	}

	// open(O_CREAT|O_WRONLY, 0444), then write: the new descriptor writes.
	out = must("create 0444 and write")(alice(`
import os
fd = os.open("ro", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o444)
print(os.write(fd, b"written"))
os.fsync(fd)
os.close(fd)
try:
    os.open("ro", os.O_WRONLY)
    print("reopened")
except PermissionError:
    print("EACCES")
print(open("ro").read())`))
	if out != "7\nEACCES\nwritten" {
		t.Fatalf("create 0444 and write: %q", out)
	}

	// chmod 000 while open: the open descriptor goes on reading, writing,
	// truncating and syncing; a new open fails.
	out = must("chmod 000 while open")(alice(`
import os
fd = os.open("c", os.O_CREAT | os.O_RDWR, 0o644)
os.fchmod(fd, 0)
print(os.pwrite(fd, b"0123456789", 0))
os.ftruncate(fd, 4)
os.fsync(fd)
print(os.pread(fd, 100, 0).decode())
try:
    os.open("c", os.O_RDONLY)
    print("reopened")
except PermissionError:
    print("EACCES")
os.close(fd)
print(oct(os.stat("c").st_mode & 0o777), os.stat("c").st_size)`))
	if out != "10\n0123\nEACCES\n0o0 4" {
		t.Fatalf("chmod 000 while open: %q", out)
	}

	// A file opened before a chown to bob stays writable through its
	// descriptor; alice cannot open it again.
	if err := os.WriteFile(e.path("shared/g"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.path("shared/g"), aliceUID, aliceUID); err != nil {
		t.Fatal(err)
	}
	script := `
import os, sys
fd = os.open("g", os.O_RDWR)
sys.stdout.write("open\n"); sys.stdout.flush()
sys.stdin.readline()  # the test chowns the file to bob meanwhile
print(os.pwrite(fd, b"after chown", 0))
try:
    os.open("g", os.O_RDONLY)
    print("reopened")
except PermissionError:
    print("EACCES")
os.close(fd)`
	cmd := pyAs(shared, aliceUID, aliceUID, nil, script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "open\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("opened before the chown: %q %v", buf, err)
	}
	if err := os.Chown(e.path("shared/g"), bobUID, bobUID); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	rest := new(strings.Builder)
	b := make([]byte, 256)
	for {
		n, err := stdout.Read(b)
		rest.Write(b[:n])
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("opened before the chown: %v\n%s", err, rest)
	}
	if got := strings.TrimSpace(rest.String()); got != "11\nEACCES" {
		t.Fatalf("opened before the chown: %q", got)
	}
	if data, err := os.ReadFile(e.path("shared/g")); err != nil || string(data) != "after chown" {
		t.Fatalf("the chowned file: %q %v", data, err)
	}
}

// TestDefaultPermissionsOption: with default_permissions the kernel checks
// too; the results are the same.
func TestDefaultPermissionsOption(t *testing.T) {
	needAsUser(t, "to run processes as other users")
	e := start(t, Options{DefaultPermissions: true}, daemontest.Options{})
	if err := os.WriteFile(e.path("secret"), []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := asUser(t, e.dir, aliceUID, aliceUID, nil, `
import os
try:
    open("secret").read()
    print("read")
except PermissionError:
    print("EACCES")
try:
    open("new", "w")
    print("created")
except PermissionError:
    print("EACCES")`)
	if err != nil || out != "EACCES\nEACCES" {
		t.Fatalf("as alice with default_permissions: %q %v", out, err)
	}
}

// TestPrivilegesDropped: with HANDLE_KILLPRIV_V2 the server, not the
// kernel, removes privileges when a file changes: a write through the
// mount drops security.capability whoever writes (root included), and the
// setuid and setgid bits when the writer is not root; a truncating open
// and a chown do the same.
func TestPrivilegesDropped(t *testing.T) {
	needAsUser(t, "to set security.capability and to run as another user")
	e := start(t, Options{}, daemontest.Options{})
	caps := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // cap_net_bind_service=ep, v2
	mode := func(p string) os.FileMode {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid)
	}

	prepare := func(name string, want os.FileMode) string {
		t.Helper()
		p := e.path(name)
		if err := os.WriteFile(p, []byte("program"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, aliceUID, aliceUID); err != nil { // before chmod: a chown clears setuid
			t.Fatal(err)
		}
		if err := os.Chmod(p, want); err != nil {
			t.Fatal(err)
		}
		if m := mode(p); m != want {
			t.Fatalf("%s: mode %v after chmod %v", name, m, want)
		}
		if err := syscall.Setxattr(p, "security.capability", caps, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hasCaps := func(p string) bool {
		t.Helper()
		buf := make([]byte, 64)
		_, err := syscall.Getxattr(p, "security.capability", buf)
		if err != nil && err != syscall.ENODATA {
			t.Fatal(err)
		}
		return err == nil
	}
	// Root writes: capabilities go, setuid stays (CAP_FSETID).
	p := prepare("byroot", 0o755|os.ModeSetuid)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if hasCaps(p) {
		t.Error("security.capability kept after a write by root")
	}
	if m := mode(p); m != 0o755|os.ModeSetuid {
		t.Errorf("mode after a write by root %v, want setuid kept", m)
	}

	// The owner (not root) writes: capabilities and setuid/setgid go.
	p = prepare("byowner", 0o775|os.ModeSetuid|os.ModeSetgid)
	if out, err := asUser(t, e.dir, aliceUID, aliceUID, nil,
		"f = os.open('byowner', os.O_WRONLY); os.pwrite(f, b'Y', 1); os.close(f)"); err != nil {
		t.Fatalf("write as the owner: %v\n%s", err, out)
	}
	if hasCaps(p) {
		t.Error("security.capability kept after a write by the owner")
	}
	if m := mode(p); m != 0o775 {
		t.Errorf("mode after a write by the owner %v, want 0775", m)
	}

	// A truncating open by the owner, and a chown by root.
	p = prepare("trunc", 0o755|os.ModeSetuid)
	if out, err := asUser(t, e.dir, aliceUID, aliceUID, nil,
		"os.close(os.open('trunc', os.O_WRONLY | os.O_TRUNC))"); err != nil {
		t.Fatalf("O_TRUNC as the owner: %v\n%s", err, out)
	}
	if hasCaps(p) || mode(p) != 0o755 {
		t.Errorf("after O_TRUNC by the owner: caps %v, mode %v", hasCaps(p), mode(p))
	}
	p = prepare("chown", 0o755)
	if err := os.Chown(p, bobUID, bobUID); err != nil {
		t.Fatal(err)
	}
	if hasCaps(p) {
		t.Error("security.capability kept after chown")
	}

	// Reading and chmod keep them.
	p = prepare("kept", 0o755)
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o750); err != nil {
		t.Fatal(err)
	}
	if !hasCaps(p) {
		t.Error("security.capability dropped by a read or chmod")
	}
}
