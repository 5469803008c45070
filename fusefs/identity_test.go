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
	if os.Getuid() != 0 {
		t.Skip("needs root to run processes as other users")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
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
	if os.Getuid() != 0 {
		t.Skip("needs root to run processes as other users")
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
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
