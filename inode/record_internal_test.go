package inode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/local"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

var now = Timespec{Sec: 1_764_000_000, Nsec: 987_654_321}

func emptyFileRecord() *record {
	return &record{Attr: Attr{Ino: 50_000_000, Mode: ModeRegular | 0o644, Nlink: 1, UID: 1000, GID: 1000,
		Atime: now, Mtime: now, Ctime: now, Crtime: now}}
}

func dirRecord() *record {
	return &record{Attr: Attr{Ino: 12_345, Mode: ModeDir | 0o755, Nlink: 2, UID: 1000, GID: 1000,
		Atime: now, Mtime: now, Ctime: now, Crtime: now}, Parent: RootIno, NextCookie: 10_000_003}
}

// recordCases are records whose encodings must round-trip, extremes
// included.
func recordCases() []*record {
	written := emptyFileRecord()
	written.Size = 4096
	written.Mtime = Timespec{Sec: now.Sec + 2, Nsec: 5}
	written.Ctime = written.Mtime
	ext := func(f func(r *record)) *record {
		r := dirRecord()
		f(r)
		return r
	}
	return []*record{
		emptyFileRecord(), dirRecord(), written, {},
		ext(func(r *record) {
			r.Ino = math.MaxUint64
			r.Mode, r.UID, r.GID = math.MaxUint32, math.MaxUint32, math.MaxUint32
			r.Nlink, r.Size = math.MaxUint64, math.MaxUint64
			r.Parent, r.NextCookie = math.MaxUint64, math.MaxInt64
		}),
		ext(func(r *record) { r.NextCookie = -1 }),
		ext(func(r *record) { r.Parent, r.NextCookie = 0, 7 }),
		ext(func(r *record) { r.Parent, r.NextCookie = 1<<62, 0 }),
		// Pre-1970 and extreme times, nanoseconds at their maximum.
		ext(func(r *record) {
			r.Ctime = Timespec{Sec: -1, Nsec: 999_999_999}
			r.Atime = Timespec{Sec: -86400 * 365 * 100, Nsec: 0}
			r.Mtime = Timespec{Sec: math.MaxInt64, Nsec: 999_999_999}
			r.Crtime = Timespec{Sec: math.MinInt64, Nsec: 1}
		}),
		ext(func(r *record) {
			r.Ctime = Timespec{Sec: math.MinInt64, Nsec: 999_999_999}
			r.Atime = Timespec{Sec: math.MaxInt64, Nsec: 999_999_999}
			r.Mtime = r.Atime
			r.Crtime = r.Atime // equals atime, not ctime
		}),
		ext(func(r *record) {
			r.Ctime = Timespec{Sec: math.MaxInt64}
			r.Atime = Timespec{Sec: math.MinInt64}
			r.Mtime = Timespec{Sec: 0, Nsec: -1} // never made, but kept exactly
			r.Crtime = Timespec{Sec: 1, Nsec: math.MaxInt64}
		}),
	}
}

// TestRecordRoundTrip: every record decodes from its version 2 encoding
// as it was, and from its version 1 encoding as version 1 kept it.
func TestRecordRoundTrip(t *testing.T) {
	for i, r := range recordCases() {
		b := encodeRecord(r)
		if b[0] != recordVersion || len(b) > recordMaxV2Size {
			t.Fatalf("case %d: encoding %x: version %d, %d bytes", i, b, b[0], len(b))
		}
		got, err := decodeRecord(r.Ino, b)
		if err != nil || *got != *r {
			t.Fatalf("case %d: decode(encode(%+v)) = %+v, %v", i, *r, got, err)
		}
		v1 := *r
		for _, ts := range []*Timespec{&v1.Atime, &v1.Mtime, &v1.Ctime, &v1.Crtime} {
			ts.Nsec = int64(uint32(ts.Nsec)) // all version 1 kept of them
		}
		got, err = decodeRecord(r.Ino, encodeRecordV1(r))
		if err != nil || *got != v1 {
			t.Fatalf("case %d: decode(encodeV1(%+v)) = %+v, %v", i, *r, got, err)
		}
	}
}

// TestRecordSizes pins the sizes of typical records and entries in the
// current encodings.
func TestRecordSizes(t *testing.T) {
	file, dir := emptyFileRecord(), dirRecord()
	written := emptyFileRecord()
	written.Size = 1 << 20
	written.Mtime = Timespec{Sec: now.Sec + 1, Nsec: 123_456_789}
	written.Ctime = written.Mtime
	for _, c := range []struct {
		name string
		b    []byte
		max  int
	}{
		{"empty file", encodeRecord(file), 22},
		{"written file", encodeRecord(written), 30},
		{"directory", encodeRecord(dir), 28},
		{"entry", encodeEntry(entry{Ino: 50_000_000, Cookie: 2_000_000, Type: DTRegular}), 9},
		{"small entry", encodeEntry(entry{Ino: 100, Cookie: 3, Type: DTRegular}), 5},
	} {
		t.Logf("%s: %d bytes", c.name, len(c.b))
		if len(c.b) > c.max {
			t.Errorf("%s: %d bytes, want at most %d", c.name, len(c.b), c.max)
		}
	}
	if n := len(encodeRecordV1(file)); n != 93 {
		t.Errorf("version 1 record: %d bytes, want 93", n)
	}
}

func isEIO(err error) bool { return err != nil && errors.Is(err, syscall.EIO) }

// TestDecodeRecordCorrupt: truncated, overlong, non-minimal, padded or
// unknown encodings fail with EIO.
func TestDecodeRecordCorrupt(t *testing.T) {
	var bad [][]byte
	for _, r := range recordCases() {
		for _, b := range [][]byte{encodeRecord(r), encodeRecordV1(r)} {
			for n := range len(b) {
				bad = append(bad, b[:n])
			}
			bad = append(bad, append(bytes.Clone(b), 0), append(bytes.Clone(b), 1))
		}
	}
	v2 := encodeRecord(emptyFileRecord())
	with := func(i int, v byte) []byte { b := bytes.Clone(v2); b[i] = v; return b }
	bad = append(bad,
		nil, []byte{0}, []byte{3}, []byte{255}, with(0, 0), with(0, 3),
		with(1, v2[1]|0x20), with(1, v2[1]|0x80),
		with(1, v2[1]|recCrtimeIsAtime), // both crtime flags
		// Non-minimal varint for mode (0x80 0x00 is 0 in two bytes).
		append([]byte{recordVersion, 0x1f, 0x80, 0x00}, make([]byte, 7)...),
		// A mode beyond 32 bits.
		append([]byte{recordVersion, 0x1f, 0x80, 0x80, 0x80, 0x80, 0x10}, make([]byte, 7)...),
		// An 11-byte varint and a 10-byte one beyond 64 bits.
		append([]byte{recordVersion, 0x1f, 1, 1, 1, 1}, append(bytes.Repeat([]byte{0xff}, 10), 1, 0, 0, 0)...),
		append([]byte{recordVersion, 0x1f, 1, 1, 1, 1}, append(bytes.Repeat([]byte{0xff}, 9), 2, 0, 0, 0)...),
		make([]byte, recordMaxV2Size+1),
	)
	bad[len(bad)-1][0] = recordVersion
	for _, b := range bad {
		if r, err := decodeRecord(7, b); !isEIO(err) {
			t.Errorf("decodeRecord(%x) = %+v, %v; want EIO", b, r, err)
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []entry{
		{}, {Ino: 1, Cookie: 1, Type: DTDir}, {Ino: 50_000_000, Cookie: 2_000_000, Type: DTRegular},
		{Ino: 1 << 56, Cookie: 1 << 48, Type: DTSymlink}, {Ino: 1 << 63, Cookie: 1 << 55, Type: 255},
		{Ino: math.MaxUint64, Cookie: math.MaxInt64, Type: DTRegular}, {Ino: 3, Cookie: -1, Type: DTRegular},
		{Ino: math.MaxUint64, Cookie: 0, Type: DTRegular}, {Ino: 0, Cookie: -1, Type: DTRegular},
	} {
		b := encodeEntry(e)
		switch {
		case len(b) < entryV1Size && b[0] == entryVersion:
		case len(b) == entryV1Size && bytes.Equal(b, encodeEntryV1(e)):
		default:
			t.Fatalf("encodeEntry(%+v) = %x", e, b)
		}
		for _, b := range [][]byte{b, encodeEntryV1(e)} {
			if got, err := decodeEntry(b); err != nil || got != e {
				t.Fatalf("decodeEntry(%x) = %+v, %v; want %+v", b, got, err, e)
			}
		}
	}
	b := encodeEntry(entry{Ino: 300, Cookie: 5, Type: DTRegular})
	for _, bad := range [][]byte{nil, {entryVersion}, {entryVersion, 1, 1}, b[:len(b)-1], append(bytes.Clone(b), 0),
		{0, 1, 1, DTRegular}, {3, 1, 1, DTRegular}, {entryVersion, 0x80, 0x00, 1, DTRegular}, make([]byte, 18),
		append([]byte{entryVersion}, append(bytes.Repeat([]byte{0xff}, 10), 1, DTRegular)...)} {
		if e, err := decodeEntry(bad); !isEIO(err) {
			t.Errorf("decodeEntry(%x) = %+v, %v; want EIO", bad, e, err)
		}
	}
}

// FuzzDecodeRecord: any bytes decode to a record or fail with EIO, and a
// decoded record survives its re-encoding.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range recordCases() {
		f.Add(encodeRecord(r))
		f.Add(encodeRecordV1(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(9, b)
		if err != nil {
			if !isEIO(err) {
				t.Fatalf("decodeRecord(%x): %v, not EIO", b, err)
			}
			return
		}
		// A version 2 input re-encodes no longer: its varints are minimal,
		// and the encoder leaves out whatever the input may have repeated
		// (a time equal to ctime, zero directory fields).
		nb := encodeRecord(r)
		if b[0] == recordVersion && len(nb) > len(b) {
			t.Fatalf("decodeRecord(%x) = %+v encodes longer: %x", b, *r, nb)
		}
		r2, err := decodeRecord(9, nb)
		if err != nil || *r2 != *r {
			t.Fatalf("decodeRecord(%x) = %+v; again %+v, %v", b, *r, r2, err)
		}
	})
}

// FuzzDecodeEntry: as FuzzDecodeRecord for entry values.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []entry{{Ino: 50_000_000, Cookie: 2_000_000, Type: DTRegular}, {Ino: math.MaxUint64, Cookie: -1, Type: DTDir}} {
		f.Add(encodeEntry(e))
		f.Add(encodeEntryV1(e))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			if !isEIO(err) {
				t.Fatalf("decodeEntry(%x): %v, not EIO", b, err)
			}
			return
		}
		nb := encodeEntry(e)
		if len(b) < entryV1Size && !bytes.Equal(nb, b) {
			t.Fatalf("decodeEntry(%x) = %+v encodes as %x", b, e, nb)
		}
		if e2, err := decodeEntry(nb); err != nil || e2 != e {
			t.Fatalf("decodeEntry(%x) = %+v; again %+v, %v", b, e, e2, err)
		}
	})
}

// toV1 rewrites every inode record and entry of be in its version 1
// encoding, as a volume made before version 2 holds them, and returns how
// many it rewrote.
func toV1(t *testing.T, be vfsbackend.Backend) int {
	t.Helper()
	ctx := context.Background()
	var b vfsbackend.Batch
	for _, pfx := range []byte{pfxInode, pfxEntry} {
		err := be.Scan(ctx, []byte{pfx}, nil, func(k, v []byte) bool {
			if pfx == pfxInode {
				r, err := decodeRecord(Ino(binary.BigEndian.Uint64(k[1:])), v)
				if err != nil {
					t.Fatal(err)
				}
				b.Put(bytes.Clone(k), encodeRecordV1(r))
			} else {
				e, err := decodeEntry(v)
				if err != nil {
					t.Fatal(err)
				}
				b.Put(bytes.Clone(k), encodeEntryV1(e))
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	return b.Len()
}

// versions counts the inode records and entries of be in version 1 and
// version 2.
func versions(t *testing.T, be vfsbackend.Backend) (rec1, rec2, ent1, ent2 int) {
	t.Helper()
	ctx := context.Background()
	err := be.Scan(ctx, []byte{pfxInode}, nil, func(_, v []byte) bool {
		if len(v) == recordV1Size && v[0] == recordV1 {
			rec1++
		} else {
			rec2++
		}
		return true
	})
	if err == nil {
		err = be.Scan(ctx, []byte{pfxEntry}, nil, func(_, v []byte) bool {
			if len(v) == entryV1Size {
				ent1++
			} else {
				ent2++
			}
			return true
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return
}

// TestOldRecordsVolume: a volume whose records and entries are all in the
// version 1 encoding opens, reads and checks clean; the records and
// entries a change touches are written in version 2 and the others stay
// as they were; the mixed volume checks clean and reopens with the same
// contents. On the memory engine and on the local one (reopened from
// disk).
func TestOldRecordsVolume(t *testing.T) {
	for _, engine := range []string{"mem", "local"} {
		t.Run(engine, func(t *testing.T) { testOldRecordsVolume(t, engine) })
	}
}

func testOldRecordsVolume(t *testing.T, engine string) {
	ctx := context.Background()
	dir := t.TempDir()
	memBE := mem.New(vfsbackend.Options{})
	open := func() (vfsbackend.Backend, *FS) {
		t.Helper()
		var be vfsbackend.Backend = memBE
		if engine == "local" {
			lb, err := local.Open(vfsbackend.Options{Path: dir, Format: vfsbackend.FormatIfNew})
			if err != nil {
				t.Fatal(err)
			}
			be = lb
		}
		fs, err := Open(ctx, be, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return be, fs
	}
	closeBE := func(be vfsbackend.Backend) {
		if engine == "local" {
			if err := be.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(fs *FS) {
		t.Helper()
		probs, err := fs.Check(ctx)
		if err != nil || len(probs) != 0 {
			t.Fatalf("check: %v, %v", probs, err)
		}
	}
	c := Caller{}
	be, fs := open()
	d, err := fs.Mkdir(ctx, c, RootIno, "dir", 0o755)
	must(err)
	var files []Attr
	for _, name := range []string{"a", "B.txt", "c"} {
		f, err := fs.Create(ctx, c, d.Ino, name, 0o644)
		must(err)
		files = append(files, f)
	}
	must(fs.Write(ctx, c, files[0].Ino, []byte("old data"), 0))
	must(fs.Link(ctx, c, RootIno, "hard", files[0].Ino))
	_, err = fs.Symlink(ctx, c, RootIno, "sym", "dir/a")
	must(err)
	must(fs.SetXattr(ctx, c, files[1].Ino, "user.x", []byte("v"), 0))
	snapshot := func(fs *FS) map[Ino]Attr {
		t.Helper()
		m := map[Ino]Attr{}
		must(fs.be.Scan(ctx, []byte{pfxInode}, nil, func(k, _ []byte) bool {
			ino := Ino(binary.BigEndian.Uint64(k[1:]))
			a, err := fs.GetAttr(ctx, ino)
			must(err)
			m[ino] = a
			return true
		}))
		return m
	}
	before := snapshot(fs)
	if n := toV1(t, be); n != 6+6 {
		t.Fatalf("rewrote %d records and entries", n)
	}
	closeBE(be)

	// The old volume opens and reads as it was.
	be, fs = open()
	if r1, r2, e1, e2 := versions(t, be); r2 != 0 || e2 != 0 || r1 != len(before) || e1 != 6 {
		t.Fatalf("old volume: %d+%d records, %d+%d entries in versions 1+2", r1, r2, e1, e2)
	}
	check(fs)
	if got := snapshot(fs); len(got) != len(before) {
		t.Fatalf("%d inodes, want %d", len(got), len(before))
	} else {
		for ino, a := range before {
			if got[ino] != a {
				t.Fatalf("inode %d: %+v, want %+v", ino, got[ino], a)
			}
		}
	}
	ino, err := fs.Lookup(ctx, c, d.Ino, "B.txt")
	if err != nil || ino != files[1].Ino {
		t.Fatalf("lookup: %d, %v", ino, err)
	}
	if name, a, err := fs.LookupCI(ctx, c, d.Ino, "b.TXT"); err != nil || name != "B.txt" || a.Ino != files[1].Ino {
		t.Fatalf("lookup_ci: %q %d, %v", name, a.Ino, err)
	}
	p := make([]byte, 16)
	if n, err := fs.Read(ctx, c, files[0].Ino, p, 0); err != nil || string(p[:n]) != "old data" {
		t.Fatalf("read: %q, %v", p[:n], err)
	}
	ents, _, err := fs.ReadDir(ctx, c, d.Ino, 0, 100, true)
	must(err)
	if len(ents) != 5 { // ., .., a, B.txt, c
		t.Fatalf("readdir: %+v", ents)
	}

	// Changes write what they touch in version 2.
	must(fs.Write(ctx, c, files[0].Ino, []byte("new"), 8))
	e, err := fs.Create(ctx, c, d.Ino, "new", 0o600)
	must(err)
	must(fs.Rename(ctx, c, d.Ino, "c", RootIno, "c2"))
	check(fs)
	r1, r2, e1, e2 := versions(t, be)
	// Written: file a, dir (new entry, rename), root (rename), new file,
	// c (ctime of rename); entries new and c2.
	if r2 != 5 || r1 != len(before)-4 || e2 != 2 || e1 != 5 {
		t.Fatalf("mixed volume: %d+%d records, %d+%d entries in versions 1+2", r1, r2, e1, e2)
	}
	if v, err := be.Get(ctx, inodeKey(e.Ino)); err != nil || v[0] != recordVersion || len(v) > 24 {
		t.Fatalf("new file's record: %x, %v", v, err)
	}
	closeBE(be)

	be, fs = open()
	check(fs)
	if n, err := fs.Read(ctx, c, files[0].Ino, p, 0); err != nil || string(p[:n]) != "old datanew" {
		t.Fatalf("read: %q, %v", p[:n], err)
	}
	if ino, err := fs.Lookup(ctx, c, RootIno, "c2"); err != nil || ino != files[2].Ino {
		t.Fatalf("lookup c2: %d, %v", ino, err)
	}
	if a, err := fs.GetAttr(ctx, files[1].Ino); err != nil || a != before[files[1].Ino] {
		t.Fatalf("untouched B.txt: %+v, %v", a, err)
	}
	closeBE(be)
}
