package client

import (
	"context"
	"strings"
	"syscall"
	"testing"
)

func TestDaemonLookupCI(t *testing.T) {
	transports(t, func(t *testing.T, d *daemon, addr string) {
		ctx := context.Background()
		_, m := dialMount(t, addr, alice)
		dir := must[Stat](t, "mkdir")(m.Mkdir(ctx, 1, "Shares", 0o755))
		f := must[Stat](t, "create")(m.Create(ctx, dir.Ino, "Straße.DOC", 0o644))

		name, st, err := m.LookupCI(ctx, 1, "SHARES")
		if err != nil || name != "Shares" || st.Ino != dir.Ino || st.Mode != dir.Mode {
			t.Fatalf("LookupCI SHARES: %q %+v %v", name, st, err)
		}
		for _, ask := range []string{"straße.doc", "STRAẞE.DOC", "Straße.DOC"} {
			name, st, err = m.LookupCI(ctx, dir.Ino, ask)
			if err != nil || name != "Straße.DOC" || st != f {
				t.Fatalf("LookupCI %q: %q %+v %v, want %+v", ask, name, st, err, f)
			}
		}
		// Another name folding alike: the exact name wins, else byte order.
		g := must[Stat](t, "create")(m.Create(ctx, dir.Ino, "straße.doc", 0o600))
		if name, st, err = m.LookupCI(ctx, dir.Ino, "straße.doc"); err != nil || name != "straße.doc" || st.Ino != g.Ino {
			t.Fatalf("LookupCI exact: %q %+v %v", name, st, err)
		}
		wantErrno(t, "LookupCI ss", func() error { _, _, err := m.LookupCI(ctx, dir.Ino, "STRASSE.doc"); return err }(), syscall.ENOENT)
		wantErrno(t, "LookupCI missing", func() error { _, _, err := m.LookupCI(ctx, dir.Ino, "nope"); return err }(), syscall.ENOENT)
		wantErrno(t, "LookupCI in a file", func() error { _, _, err := m.LookupCI(ctx, f.Ino, "x"); return err }(), syscall.ENOTDIR)
		wantErrno(t, "LookupCI long", func() error { _, _, err := m.LookupCI(ctx, dir.Ino, strings.Repeat("x", 300)); return err }(), syscall.ENAMETOOLONG)
		wantErrno(t, "LookupCI huge", func() error { _, _, err := m.LookupCI(ctx, dir.Ino, strings.Repeat("x", 5000)); return err }(), syscall.ENAMETOOLONG)
		// Rename changing only the case; unlink one of two.
		if err := m.Rename(ctx, dir.Ino, "Straße.DOC", dir.Ino, "STRASSE.DOC"); err != nil {
			t.Fatal(err)
		}
		if name, _, err = m.LookupCI(ctx, dir.Ino, "Straße.DOC"); err != nil || name != "straße.doc" {
			t.Fatalf("LookupCI after rename: %q %v", name, err)
		}
		if err := m.Unlink(ctx, dir.Ino, "straße.doc"); err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "LookupCI unlinked", func() error { _, _, err := m.LookupCI(ctx, dir.Ino, "Straße.DOC"); return err }(), syscall.ENOENT)
		if name, st, err = m.LookupCI(ctx, dir.Ino, "strasse.doc"); err != nil || name != "STRASSE.DOC" || st.Ino != f.Ino {
			t.Fatalf("LookupCI renamed: %q %+v %v", name, st, err)
		}
		d.d.Check(t)
	})
}
