package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/vfsbackend"
)

func runArgs(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	rc := run(args, &out, &errOut)
	return rc, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	rc, out, _ := runArgs("-version")
	if rc != 0 || out != "proxyfsd "+version+"\n" {
		t.Errorf("-version: %d %q", rc, out)
	}
}

func TestBadUsage(t *testing.T) {
	if rc, _, _ := runArgs("-nope"); rc != 2 {
		t.Errorf("unknown flag: exit %d", rc)
	}
	if rc, _, errOut := runArgs("extra"); rc != 2 || !strings.Contains(errOut, "extra") {
		t.Errorf("extra argument: exit %d %q", rc, errOut)
	}
}

func TestStartupFailuresAreOneLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[volume]]\nname = \"x\"\nsync_interval = \"x\"\n"), 0o644)
	rc, _, errOut := runArgs("-config", bad)
	if rc != 1 || errOut != "proxyfsd: config: volume[0].sync_interval: invalid duration \"x\" (in "+bad+")\n" {
		t.Errorf("bad config: exit %d %q", rc, errOut)
	}
	rc, _, errOut = runArgs("-config", filepath.Join(dir, "missing.toml"))
	if rc != 1 || !strings.HasPrefix(errOut, "proxyfsd: config: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("missing config: exit %d %q", rc, errOut)
	}

	// A port in use, or a Unix socket path taken by a file: one line, and
	// the new volume is not formatted (the sockets are bound first).
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := filepath.Join(dir, "taken")
	os.WriteFile(taken, nil, 0o644)
	for name, server := range map[string]string{
		"port in use": fmt.Sprintf("tcp = %q\nunix = \"\"", busy.Addr()),
		"socket path": fmt.Sprintf("tcp = \"127.0.0.1:0\"\nunix = %q", taken),
	} {
		vol := filepath.Join(dir, "vol-"+strings.ReplaceAll(name, " ", "-"))
		cfg := filepath.Join(dir, "cfg.toml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("[server]\n%s\n[metrics]\nlisten = \"\"\n[[volume]]\nname = \"default\"\nengine = \"local\"\npath = %q\nauto_format = true\n", server, vol)), 0o644)
		rc, _, errOut := runArgs("-config", cfg)
		if rc != 1 || !strings.HasPrefix(errOut, "proxyfsd: listen ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d %q", name, rc, errOut)
		}
		if _, err := os.Stat(vol); !os.IsNotExist(err) {
			t.Errorf("%s: the volume was created before the start failed: %v", name, err)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[log]\nlevel = \"error\"\n[[volume]]\nname = \"a\"\npath = \""+filepath.Join(dir, "a")+"\"\nauto_format = true\n[[volume]]\nname = \"m\"\nengine = \"memory\"\n"), 0o644)
	// -check writes nothing: a volume that does not exist yet is a
	// problem, and is still not there afterwards.
	rc, out, errOut := runArgs("-check", "-config", cfg)
	if rc != 1 || !strings.Contains(out, "no volume here") {
		t.Errorf("-check before -format: exit %d %q %q", rc, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Errorf("-check created the volume directory")
	}
	rc, out, errOut = runArgs("-format", "-config", cfg)
	if rc != 0 || !strings.Contains(out, "formatted a new, empty volume") || !strings.Contains(out, "memory engine, nothing to format") {
		t.Errorf("-format: exit %d %q %q", rc, out, errOut)
	}
	rc, out, errOut = runArgs("-check", "-config", cfg)
	if rc != 0 || !strings.Contains(out, "2 volume(s) consistent") {
		t.Errorf("-check: exit %d %q %q", rc, out, errOut)
	}
	rc, _, errOut = runArgs("-check", "-format", "-config", cfg)
	if rc != 1 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("-check -format: exit %d %q", rc, errOut)
	}
}

// TestNoSilentFormat: without auto_format, a missing volume stops the
// daemon with a message that says what to do.
func TestNoSilentFormat(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("[log]\nlevel = \"error\"\n[server]\ntcp = \"127.0.0.1:0\"\nunix = \"\"\n[metrics]\nlisten = \"\"\n[[volume]]\nname = \"a\"\npath = \""+filepath.Join(dir, "a")+"\"\n"), 0o644)
	rc, _, errOut := runArgs("-config", cfg)
	if rc != 1 || !strings.Contains(errOut, "run proxyfsd -format") {
		t.Errorf("start without a volume: exit %d %q", rc, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Errorf("the refused start created the volume directory")
	}
}

// TestEnginesAgree checks that the engine names the config accepts are
// exactly the engines linked into the daemon: conf keeps its own list so
// that a config can be validated without them, and must not drift.
func TestEnginesAgree(t *testing.T) {
	got := append([]string(nil), conf.Engines...)
	sort.Strings(got)
	if want := vfsbackend.Engines(); !slices.Equal(got, want) {
		t.Errorf("conf.Engines %v, registered engines %v", got, want)
	}
}
