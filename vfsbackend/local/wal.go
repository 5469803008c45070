package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

const (
	walMagic      = "PFSWAL01"
	snapMagic     = "PFSSNP02" // a key section, then a section of inline data
	snapMagicV1   = "PFSSNP01" // a key section only (read, never written)
	walPrefix     = "wal."
	snapName      = "snapshot"
	snapTmpName   = "snapshot.tmp"
	recHeaderSize = 16      // length u32, crc u32, seq u64
	maxRecordSize = 1 << 30 // larger lengths are garbage (a torn header)
	opPut         = 0
	opDelete      = 1
	opInlinePut   = 2 // key: 8-byte inode number; value: the whole data object
	opInlineDel   = 3 // key: 8-byte inode number
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks damage that is not a torn tail.
var errCorrupt = errors.New("local: corrupt volume")

func inoKey(ino vfsbackend.Ino) []byte { return binary.BigEndian.AppendUint64(nil, uint64(ino)) }

// walOp is one operation of a WAL record.
type walOp struct {
	kind       byte
	key, value []byte
}

// encodeRecord encodes b's ops after a recHeaderSize gap and returns the
// buffer and the CRC of the ops. finishRecord fills the header in.
func encodeRecord(b *vfsbackend.Batch) []byte {
	ops := make([]walOp, len(b.Ops))
	for i, op := range b.Ops {
		ops[i] = walOp{kind: opPut, key: op.Key, value: op.Value}
		if op.Delete {
			ops[i] = walOp{kind: opDelete, key: op.Key}
		}
	}
	return encodeOps(ops)
}

// encodeOps is encodeRecord for any ops.
func encodeOps(ops []walOp) []byte {
	n := recHeaderSize + binary.MaxVarintLen64
	for _, op := range ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.key) + len(op.value)
	}
	buf := make([]byte, recHeaderSize, n)
	buf = binary.AppendUvarint(buf, uint64(len(ops)))
	for _, op := range ops {
		buf = append(buf, op.kind)
		buf = binary.AppendUvarint(buf, uint64(len(op.key)))
		buf = append(buf, op.key...)
		if op.kind == opPut || op.kind == opInlinePut {
			buf = binary.AppendUvarint(buf, uint64(len(op.value)))
			buf = append(buf, op.value...)
		}
	}
	return buf
}

// finishRecord writes the header of a record built by encodeRecord; crc is
// the CRC-32C of the ops part (buf[recHeaderSize:]).
func finishRecord(buf []byte, crc uint32, seq uint64) {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	crc = crc32.Update(crc, castagnoli, s[:])
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(buf)-recHeaderSize))
	binary.LittleEndian.PutUint32(buf[4:], crc)
	binary.LittleEndian.PutUint64(buf[8:], seq)
}

// decodeOps calls fn for each op of a record's ops part.
func decodeOps(p []byte, fn func(kind byte, key, value []byte)) error {
	bad := fmt.Errorf("%w: malformed WAL record", errCorrupt)
	nops, k := binary.Uvarint(p)
	if k <= 0 {
		return bad
	}
	p = p[k:]
	field := func() ([]byte, bool) {
		var f []byte
		var ok bool
		f, p, ok = nextField(p)
		return f, ok
	}
	for i := uint64(0); i < nops; i++ {
		if len(p) == 0 {
			return bad
		}
		kind := p[0]
		p = p[1:]
		key, ok := field()
		if !ok {
			return bad
		}
		switch kind {
		case opDelete:
			fn(kind, key, nil)
		case opInlineDel:
			if len(key) != 8 {
				return bad
			}
			fn(kind, key, nil)
		case opPut, opInlinePut:
			val, ok := field()
			if !ok || (kind == opInlinePut && len(key) != 8) {
				return bad
			}
			fn(kind, key, val)
		default:
			return bad
		}
	}
	if len(p) != 0 {
		return bad
	}
	return nil
}

// walFile is one WAL file found on disk.
type walFile struct {
	gen  uint64
	path string
}

func walName(gen uint64) string { return fmt.Sprintf("%s%016x", walPrefix, gen) }

// listWALs returns the WAL files in dir, oldest first.
func listWALs(dir string) ([]walFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []walFile
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, walPrefix) || len(name) != len(walPrefix)+16 {
			continue
		}
		gen, err := strconv.ParseUint(name[len(walPrefix):], 16, 64)
		if err != nil {
			continue
		}
		out = append(out, walFile{gen: gen, path: filepath.Join(dir, name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gen < out[j].gen })
	return out, nil
}

// replayWAL applies the records of data (a whole WAL file) with seq > *seq
// with apply, checking that sequence numbers are contiguous. It returns the
// offset just past the last good record and whether the file ended in a
// torn or bad record (everything from that offset on is garbage).
func replayWAL(data []byte, apply func(kind byte, key, value []byte), seq *uint64) (good int64, torn bool, err error) {
	if len(data) < len(walMagic) || string(data[:len(walMagic)]) != walMagic {
		return 0, true, nil
	}
	off := len(walMagic)
	for off < len(data) {
		if len(data)-off < recHeaderSize {
			return int64(off), true, nil
		}
		l := binary.LittleEndian.Uint32(data[off:])
		crc := binary.LittleEndian.Uint32(data[off+4:])
		rseq := binary.LittleEndian.Uint64(data[off+8:])
		if l > maxRecordSize || int64(l) > int64(len(data)-off-recHeaderSize) {
			return int64(off), true, nil
		}
		ops := data[off+recHeaderSize : off+recHeaderSize+int(l)]
		c := crc32.Checksum(ops, castagnoli)
		c = crc32.Update(c, castagnoli, data[off+8:off+16])
		if c != crc {
			return int64(off), true, nil
		}
		if rseq > *seq {
			if rseq != *seq+1 {
				return int64(off), false, fmt.Errorf("%w: WAL sequence jumps from %d to %d", errCorrupt, *seq, rseq)
			}
			if err := decodeOps(ops, apply); err != nil {
				return int64(off), false, err
			}
			*seq = rseq
		}
		off += recHeaderSize + int(l)
	}
	return int64(off), false, nil
}

// loadSnapshot reads the snapshot file of a volume made before the
// on-disk index, if any, into m and returns its sequence number (0
// without a snapshot). Snapshots are only read now: the first read-write
// open converts one to the index.
func loadSnapshot(path string, m *memtable) (uint64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	bad := fmt.Errorf("%w: bad snapshot %s", errCorrupt, path)
	if len(data) < len(snapMagic)+16+4 {
		return 0, bad
	}
	v1 := string(data[:len(snapMagic)]) == snapMagicV1
	if !v1 && string(data[:len(snapMagic)]) != snapMagic {
		return 0, bad
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, bad
	}
	p := body[len(snapMagic):]
	seq := binary.LittleEndian.Uint64(p)
	count := binary.LittleEndian.Uint64(p[8:])
	p = p[16:]
	field := func() ([]byte, bool) {
		var f []byte
		var ok bool
		f, p, ok = nextField(p)
		return f, ok
	}
	for i := uint64(0); i < count; i++ {
		key, ok1 := field()
		val, ok2 := field()
		if !ok1 || !ok2 {
			return 0, bad
		}
		m.apply(opPut, key, val)
	}
	if !v1 {
		// The inline section: a count, then (inode number, data) pairs.
		if len(p) < 8 {
			return 0, bad
		}
		count = binary.LittleEndian.Uint64(p)
		p = p[8:]
		for i := uint64(0); i < count; i++ {
			key, ok1 := field()
			val, ok2 := field()
			if !ok1 || !ok2 || len(key) != 8 {
				return 0, bad
			}
			m.apply(opInlinePut, key, val)
		}
	}
	if len(p) != 0 {
		return 0, bad
	}
	return seq, nil
}

// snapshotSeq reads the sequence number in a snapshot's header.
func snapshotSeq(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var hdr [len(snapMagic) + 8]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return 0, fmt.Errorf("%w: bad snapshot %s: %w", errCorrupt, path, err)
	}
	if m := string(hdr[:len(snapMagic)]); m != snapMagic && m != snapMagicV1 {
		return 0, fmt.Errorf("%w: bad snapshot %s", errCorrupt, path)
	}
	return binary.LittleEndian.Uint64(hdr[len(snapMagic):]), nil
}

// createWAL creates dir/wal.<gen> holding only the magic, durably.
func createWAL(dir string, gen uint64) (*os.File, error) {
	path := filepath.Join(dir, walName(gen))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt([]byte(walMagic), 0); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// recordsAfterDamage looks for intact records past a bad one at offset
// bad of a WAL: after a crash only the last record can be torn, so intact
// records behind it mean the damage is something else (a lost page after
// a power failure, or corruption) and those records will be dropped. It
// scans at most maxScan bytes and returns how many records it found and
// the highest sequence number among them.
func recordsAfterDamage(data []byte, bad int64, seq uint64) (n int, last uint64) {
	const maxScan = 16 << 20
	end := min(int64(len(data)), bad+maxScan)
	for off := bad + 1; off+recHeaderSize <= end; off++ {
		if rseq, l, ok := intactRecord(data, off, seq); ok {
			// Walk on from the first intact record.
			for ok {
				n, last, seq = n+1, rseq, rseq
				off += recHeaderSize + int64(l)
				rseq, l, ok = intactRecord(data, off, seq)
			}
			return n, last
		}
	}
	return 0, 0
}

// intactRecord reports whether a record with a sequence number above seq
// starts at off and passes its CRC.
func intactRecord(data []byte, off int64, seq uint64) (rseq uint64, l uint32, ok bool) {
	if off+recHeaderSize > int64(len(data)) {
		return 0, 0, false
	}
	l = binary.LittleEndian.Uint32(data[off:])
	rseq = binary.LittleEndian.Uint64(data[off+8:])
	if rseq <= seq || rseq > seq+1<<20 || int64(l) > int64(len(data))-off-recHeaderSize {
		return 0, 0, false
	}
	c := crc32.Checksum(data[off+recHeaderSize:off+recHeaderSize+int64(l)], castagnoli)
	c = crc32.Update(c, castagnoli, data[off+8:off+16])
	return rseq, l, c == binary.LittleEndian.Uint32(data[off+4:])
}

// nextField splits a uvarint-length-prefixed field off the front of p; ok
// is false if p does not start with a whole one.
func nextField(p []byte) (field, rest []byte, ok bool) {
	l, k := binary.Uvarint(p)
	if k <= 0 || l > uint64(len(p)-k) {
		return nil, p, false
	}
	return p[k : k+int(l)], p[k+int(l):], true
}
