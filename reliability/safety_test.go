package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// These tests are the regressions of what probing the daemon as a
// careless operator found: a check that destroyed data, data files
// missing without an error, a deleted volume directory replaced by an
// empty volume, and two volumes sharing an identity.

// smallFiles creates n files /f000.. holding their own names and returns
// the mount's client (closed by the caller).
func smallFiles(t *testing.T, d *daemontest.Daemon, n int) {
	t.Helper()
	c, m := dialMount(t, d.TCPAddr)
	defer c.Close()
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprintf("/f%03d", i)
		st, err := m.CreatePath(ctx, name, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Write(ctx, st.Ino, []byte(name), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// walPath returns the only WAL of the volume at dir.
func walPath(t *testing.T, dir string) string {
	t.Helper()
	wals, err := filepath.Glob(filepath.Join(dir, "wal.????????????????"))
	if err != nil || len(wals) != 1 {
		t.Fatalf("WALs in %s: %v %v", dir, wals, err)
	}
	return wals[0]
}

// snapshotDir returns the name and content of every file under dir.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDamagedWAL: a byte flipped in the middle of the WAL of a stopped
// volume. -check used to truncate the WAL to the damage, drop half the
// files and call the volume consistent; a normal start dropped them too.
// Now -check writes nothing and reports the damage, a start refuses, and
// only -repair drops the records behind the damage, after saving the WAL
// aside. A torn tail is still cut quietly.
func TestDamagedWAL(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	const files = 100
	smallFiles(t, d, files)
	d.Stop()
	vol := filepath.Join(d.DataDir, "default")
	wal := walPath(t, vol)
	data, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x55
	if err := os.WriteFile(wal, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, d.DataDir)

	code, out := d.Run(t, time.Minute, "-check")
	if code != 1 || !strings.Contains(out, "damaged at offset") || !strings.Contains(out, "-repair") ||
		strings.Contains(out, "consistent") {
		t.Errorf("-check of a damaged WAL: exit %d:\n%s", code, out)
	}
	if after := snapshotDir(t, d.DataDir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("-check changed the volume's files")
	}

	code, out = d.Run(t, time.Minute)
	if code != 1 || !strings.Contains(out, "damaged at offset") || !strings.Contains(out, "proxyfsd -repair") {
		t.Errorf("start on a damaged WAL: exit %d:\n%s", code, out)
	}
	if after := snapshotDir(t, d.DataDir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the refused start changed the volume's files")
	}

	code, out = d.Run(t, time.Minute, "-repair")
	if code != 0 || !strings.Contains(out, "1 volume(s) consistent") {
		t.Errorf("-repair: exit %d:\n%s", code, out)
	}
	saved, _ := filepath.Glob(wal + ".damaged-*")
	if len(saved) != 1 {
		t.Fatalf("-repair saved %v aside", saved)
	}
	if b, err := os.ReadFile(saved[0]); err != nil || !bytes.Equal(b, data) {
		t.Errorf("the saved WAL differs from the damaged one (%v)", err)
	}

	// A torn tail (an unacknowledged commit cut short) is cut quietly.
	f, err := os.OpenFile(wal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{40, 0, 0, 0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code, out := d.Run(t, time.Minute, "-check"); code != 0 {
		t.Errorf("-check with a torn tail: exit %d:\n%s", code, out)
	}
	d.Restart()
	c, m := dialMount(t, d.TCPAddr)
	defer c.Close()
	ctx := context.Background()
	kept, empty := 0, 0
	for i := range files {
		name := fmt.Sprintf("/f%03d", i)
		st, err := m.GetStatPath(ctx, name)
		if err != nil {
			continue
		}
		kept++
		buf := make([]byte, 16)
		n, err := m.Read(ctx, st.Ino, buf, 0)
		switch {
		case err == nil && n == 0 && empty == 0:
			empty++ // created before the damage, written in the damaged record
		case err != nil || string(buf[:n]) != name:
			t.Errorf("%s after repair: %q %v", name, buf[:n], err)
		}
	}
	if kept == 0 || kept == files {
		t.Errorf("%d of %d files after the repair; want the ones before the damage", kept, files)
	}
	t.Logf("damaged WAL: -check and a start refused and changed nothing; -repair kept %d of %d files, saved %s",
		kept, files, filepath.Base(saved[0]))
}

// TestMissingFileData: a data file cut short and another deleted behind
// the daemon's back. -check used to say consistent and reads returned
// zeros; now -check names both and reads fail with EIO and a log line.
// A file grown by a resize (a hole by design) stays fine.
func TestMissingFileData(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	c, m := dialMount(t, d.TCPAddr)
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: not inline
	inos := map[string]uint64{}
	for _, name := range []string{"cut", "gone", "fine"} {
		st, err := m.CreatePath(ctx, "/"+name, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Write(ctx, st.Ino, big, 0); err != nil {
			t.Fatal(err)
		}
		inos[name] = st.Ino
	}
	sparse, err := m.CreatePath(ctx, "/sparse", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Resize(ctx, sparse.Ino, 1<<20); err != nil {
		t.Fatal(err)
	}
	c.Close()
	d.Stop()
	if code, out := d.Run(t, time.Minute, "-check"); code != 0 {
		t.Fatalf("-check before the damage: exit %d:\n%s", code, out)
	}
	dataFile := func(ino uint64) string {
		return filepath.Join(d.DataDir, "default", "data", fmt.Sprintf("%02x", uint8(ino)), fmt.Sprintf("%016x", ino))
	}
	if err := os.Truncate(dataFile(inos["cut"]), int64(len(big)/2)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dataFile(inos["gone"])); err != nil {
		t.Fatal(err)
	}
	code, out := d.Run(t, time.Minute, "-check")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("inode %d: size %d, but its data ends at %d", inos["cut"], len(big), len(big)/2)) ||
		!strings.Contains(out, fmt.Sprintf("inode %d: size %d, but its data is missing", inos["gone"], len(big))) ||
		strings.Count(out, "inode ") != 2 {
		t.Errorf("-check of missing data: exit %d:\n%s", code, out)
	}

	d.Restart()
	c, m = dialMount(t, d.TCPAddr)
	defer c.Close()
	buf := make([]byte, len(big))
	for _, name := range []string{"cut", "gone"} {
		for _, size := range []int{len(big), 4096} { // sendfile and buffered paths
			n, err := m.Read(ctx, inos[name], buf[:size], uint64(len(big)-size))
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("read %d bytes of %s: %d, %v; want EIO", size, name, n, err)
			}
		}
	}
	if n, err := m.Read(ctx, inos["fine"], buf, 0); err != nil || n != len(big) || !bytes.Equal(buf, big) {
		t.Errorf("read fine: %d %v", n, err)
	}
	if n, err := m.Read(ctx, sparse.Ino, buf, 1<<19); err != nil || n != len(buf) || !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("read sparse: %d %v", n, err)
	}
	if !strings.Contains(d.Logs(), "file data missing") {
		t.Errorf("no log line for the missing data")
	}
}

// readyz returns the status of GET /readyz.
func readyz(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestVolumeDirectoryDeleted: rm -rf of the volume directory under a
// running daemon. Writes and flushes used to be acknowledged, /readyz
// stayed 200, and after a restart the daemon formatted an empty volume.
// Now the volume fails (EIO, readiness 503, an error logged) and a
// restart refuses to start until the operator formats on purpose.
func TestVolumeDirectoryDeleted(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info", Metrics: true})
	c, m := dialMount(t, d.TCPAddr)
	defer c.Close()
	ctx := context.Background()
	st, err := m.CreatePath(ctx, "/precious", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if code := readyz(t, d.MetricsAddr); code != http.StatusOK {
		t.Fatalf("/readyz %d before", code)
	}
	if err := os.RemoveAll(filepath.Join(d.DataDir, "default")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write(ctx, st.Ino, []byte("data"), 0); err != nil && !errors.Is(err, syscall.EIO) {
		t.Errorf("write after rm -rf: %v", err)
	}
	if err := m.Flush(ctx, st.Ino); !errors.Is(err, syscall.EIO) {
		t.Errorf("flush after rm -rf: %v, want EIO", err)
	}
	if _, err := m.CreatePath(ctx, "/after", 0o644); !errors.Is(err, syscall.EIO) {
		t.Errorf("create after the failure: %v, want EIO", err)
	}
	if code := readyz(t, d.MetricsAddr); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d after rm -rf, want 503", code)
	}
	if !strings.Contains(d.Logs(), "the volume directory was deleted") {
		t.Errorf("no error logged for the deleted directory")
	}
	d.Kill()

	// The marker in the parent remembers the volume: no silent new one.
	code, out := d.Run(t, time.Minute)
	if code != 1 || !strings.Contains(out, "says a volume was formatted there") || !strings.Contains(out, "proxyfsd -format") {
		t.Errorf("start after rm -rf: exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(d.DataDir, "default")); err == nil {
		t.Errorf("the refused start created the volume directory")
	}
	// The operator decides: -format makes a new, empty volume.
	code, out = d.Run(t, time.Minute, "-format")
	if code != 0 || !strings.Contains(out, "formatted a new, empty volume") {
		t.Fatalf("-format: exit %d:\n%s", code, out)
	}
	code, out = d.Run(t, time.Minute, "-format")
	if code != 0 || !strings.Contains(out, "already holds a volume") {
		t.Errorf("-format again: exit %d:\n%s", code, out)
	}
	d.Restart()
	c2, m2 := dialMount(t, d.TCPAddr)
	defer c2.Close()
	if _, err := m2.GetStatPath(ctx, "/precious"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat in the new volume: %v", err)
	}
}

// TestVolumeIdentity: two daemons, each with a volume named "default",
// used to report the same dev and fsid. Each volume now has an identity
// chosen when it is formatted, which survives restarts.
func TestVolumeIdentity(t *testing.T) {
	ids := func(d *daemontest.Daemon) (uint64, uint64) {
		c, m := dialMount(t, d.TCPAddr)
		defer c.Close()
		ctx := context.Background()
		st, err := m.GetStat(ctx, m.RootInode())
		if err != nil {
			t.Fatal(err)
		}
		vfs, err := m.StatVFS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Dev, vfs.Fsid
	}
	a := daemontest.Start(t, daemontest.Options{})
	b := daemontest.Start(t, daemontest.Options{})
	devA, fsidA := ids(a)
	devB, fsidB := ids(b)
	if devA == devB || fsidA == fsidB || devA != fsidA {
		t.Errorf("dev/fsid: volume a %d/%d, volume b %d/%d", devA, fsidA, devB, fsidB)
	}
	a.Restart()
	if dev, _ := ids(a); dev != devA {
		t.Errorf("dev changed across a restart: %d, then %d", devA, dev)
	}
}

// TestFullDisk fills a small tmpfs that holds the volume: big files
// first, then small files and xattrs so that the WAL grows last. Unlink,
// resize to 0 and rmdir used to fail with ENOSPC, also after a restart,
// until someone made room by hand. Now removals always go through (the
// engine's space reserve), and once they freed space, creates work again.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=40m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info", DataDir: filepath.Join(mnt, "data")})
	c, m := dialMount(t, d.TCPAddr)
	defer func() { c.Close() }()
	ctx := context.Background()
	isFull := func(err error) bool { return errors.Is(err, syscall.ENOSPC) }

	// A small file made before the volume fills: how many of the small
	// files below fit depends on the room left in the WAL's last page,
	// which can be none.
	early, err := m.CreatePath(ctx, "/early", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetXattr(ctx, early.Ino, "user.pad", bytes.Repeat([]byte("p"), 2000), 0); err != nil {
		t.Fatal(err)
	}

	block := bytes.Repeat([]byte("x"), 1<<20)
	var bigs []uint64
	for i := 0; ; i++ {
		st, err := m.CreatePath(ctx, fmt.Sprintf("/big%03d", i), 0o644)
		if isFull(err) {
			break
		}
		if err != nil {
			t.Fatalf("create big%03d: %v", i, err)
		}
		bigs = append(bigs, st.Ino)
		if _, err := m.Write(ctx, st.Ino, block, 0); isFull(err) {
			break
		} else if err != nil {
			t.Fatalf("write big%03d: %v", i, err)
		}
	}
	if _, err := m.MkdirPath(ctx, "/dir", 0o755); err != nil && !isFull(err) {
		t.Fatal(err)
	}
	small := 0
	for ; ; small++ {
		st, err := m.CreatePath(ctx, fmt.Sprintf("/s%05d", small), 0o644)
		if isFull(err) {
			break
		}
		if err != nil {
			t.Fatalf("create s%05d: %v", small, err)
		}
		if err := m.SetXattr(ctx, st.Ino, "user.pad", bytes.Repeat([]byte("p"), 2000), 0); isFull(err) {
			continue // smaller records may still fit: create until nothing does
		} else if err != nil {
			t.Fatalf("setxattr s%05d: %v", small, err)
		}
	}
	if _, err := m.CreatePath(ctx, "/one-more", 0o644); !isFull(err) {
		t.Fatalf("the volume is not full: create gave %v", err)
	}
	t.Logf("full after %d 1 MiB files and %d small files with xattrs", len(bigs), small)

	// Removals go through on the full disk.
	if err := m.UnlinkPath(ctx, "/early"); err != nil {
		t.Errorf("unlink a small file on a full disk: %v", err)
	}
	if err := m.Resize(ctx, bigs[0], 0); err != nil {
		t.Errorf("resize to 0 on a full disk: %v", err)
	}
	if err := m.UnlinkPath(ctx, "/big001"); err != nil {
		t.Errorf("unlink a big file on a full disk: %v", err)
	}

	// And after a crash and a restart.
	c.Close()
	d.Kill()
	d.Restart()
	c, m = dialMount(t, d.TCPAddr)
	for i := 2; i < 6 && i < len(bigs); i++ {
		if err := m.UnlinkPath(ctx, fmt.Sprintf("/big%03d", i)); err != nil {
			t.Errorf("unlink big%03d after a restart: %v", i, err)
		}
	}
	if err := m.RmdirPath(ctx, "/dir"); err != nil && !errors.Is(err, syscall.ENOENT) {
		t.Errorf("rmdir after a restart: %v", err)
	}
	// The space the removals freed is usable again.
	st, err := m.CreatePath(ctx, "/after", 0o644)
	if err != nil {
		t.Fatalf("create after removals: %v", err)
	}
	if _, err := m.Write(ctx, st.Ino, block, 0); err != nil {
		t.Errorf("write after removals: %v", err)
	}
	c.Close()
	d.Stop()
	d.Check(t)
}

// TestOverlappingWrites checks what PROTOCOL.md promises about
// concurrent writes to one file: each write is applied whole, so after two
// overlapping 1 MiB writes the file holds one of them entirely, and a
// read sent after both replies sees it. (A read concurrent with the
// writes may see a mix: that is documented, and counted here only for the
// log.)
func TestOverlappingWrites(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	c, m := dialMount(t, d.TCPAddr)
	defer c.Close()
	ctx := context.Background()
	st, err := m.CreatePath(ctx, "/f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	bufs := [][]byte{bytes.Repeat([]byte("A"), size), bytes.Repeat([]byte("B"), size)}
	stop := make(chan struct{})
	readerDone := make(chan int)
	go func() {
		mixed := 0
		buf := make([]byte, size)
		for {
			select {
			case <-stop:
				readerDone <- mixed
				return
			default:
			}
			n, err := m.Read(ctx, st.Ino, buf, 0)
			if err == nil && n == size && bytes.Count(buf, []byte("A")) != 0 && bytes.Count(buf, []byte("B")) != 0 {
				mixed++
			}
		}
	}()
	rounds := 30
	for r := 0; r < rounds; r++ {
		errs := make(chan error, 2)
		for _, b := range bufs {
			go func() {
				_, err := m.Write(ctx, st.Ino, b, 0)
				errs <- err
			}()
		}
		for range bufs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		got := make([]byte, size)
		if n, err := m.Read(ctx, st.Ino, got, 0); err != nil || n != size {
			t.Fatalf("read: %d %v", n, err)
		}
		if !bytes.Equal(got, bufs[0]) && !bytes.Equal(got, bufs[1]) {
			t.Fatalf("round %d: after two overlapping writes the file holds %d A and %d B",
				r, bytes.Count(got, []byte("A")), bytes.Count(got, []byte("B")))
		}
	}
	close(stop)
	t.Logf("%d rounds of two overlapping 1 MiB writes: each ended whole; a concurrent reader saw a mix %d times (documented)",
		rounds, <-readerDone)
}
