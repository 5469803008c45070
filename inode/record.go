package inode

import (
	"encoding/binary"
	"fmt"
	"math"
	"syscall"
)

// Key layout in the backend's ordered map. Inode numbers and cookies are
// big-endian so that keys sort numerically.
//
//	i<ino>               inode record (encodeRecord): version 2 in varints,
//	                     about 21 bytes for an empty file; version 1 (93
//	                     bytes, fixed) is still read
//	e<dir><name>         directory entry: ino, cookie, type (encodeEntry):
//	                     version 2 in varints, 4-16 bytes; version 1 (17
//	                     bytes, fixed) is still read
//	c<dir><cookie>       the same entry by cookie: ino, type, name
//	l<ino>               symlink target
//	x<ino><name>         extended attribute value
//	f<dir><fold>\0<name>  case-fold index of an entry: ino (casefold.go)
//	o<ino>               orphan list: unlinked files still open (orphan.go)
//	s<name>              volume counters (next inode number, inode count),
//	                     identity and marks (sci_index, slocks_held, ...)
const (
	pfxInode   = 'i'
	pfxEntry   = 'e'
	pfxCookie  = 'c'
	pfxSymlink = 'l'
	pfxXattr   = 'x'
	pfxSuper   = 's'
)

var (
	keyNextIno   = []byte("snext_ino")
	keyInodeUsed = []byte("sinodes")
	// keyVolumeID holds 16 random bytes chosen when the volume is
	// formatted: the volume's identity (stat dev, statvfs fsid).
	keyVolumeID = []byte("svolume_id")
	// keyDataCovers is present when every regular file's data object
	// covers its size (a file grown by a resize has a data object of that
	// length, sparse): then short data is damage, and reads of it fail
	// with EIO. Volumes formatted before it existed are upgraded at their
	// first read-write open.
	keyDataCovers = []byte("sdata_covers")
)

func inoKey(pfx byte, ino Ino) []byte {
	k := make([]byte, 9)
	k[0] = pfx
	binary.BigEndian.PutUint64(k[1:], uint64(ino))
	return k
}

func inodeKey(ino Ino) []byte { return inoKey(pfxInode, ino) }

func symlinkKey(ino Ino) []byte { return inoKey(pfxSymlink, ino) }

func entryKey(dir Ino, name string) []byte {
	return append(inoKey(pfxEntry, dir), name...)
}

func cookieKey(dir Ino, cookie int64) []byte {
	return binary.BigEndian.AppendUint64(inoKey(pfxCookie, dir), uint64(cookie))
}

func xattrKey(ino Ino, name string) []byte {
	return append(inoKey(pfxXattr, ino), name...)
}

// record is an inode as stored: its attributes plus the directory fields.
type record struct {
	Attr
	Parent     Ino   // directories: the directory that holds it (root: itself)
	NextCookie int64 // directories: the cookie the next entry gets
}

// Record encodings. Version 1 (recordV1Size bytes, fixed): version, mode,
// uid, gid (4 bytes each), nlink, size (8 each), atime, mtime, ctime,
// crtime (8 bytes of seconds and 4 of nanoseconds each), parent and next
// cookie (8 each), all big-endian. Volumes written before version 2 hold
// it; it is still read, never written.
//
// Version 2 (written since issue 19, variable length: about 21 bytes for
// a new empty file, 26 for a directory, 28 for a file written once):
//
//	version (2), flags
//	uvarint mode, uid, gid, nlink, size
//	ctime: varint seconds (zigzag), uvarint nanoseconds
//	atime, mtime, crtime unless a flag says they equal another time:
//	    varint seconds minus ctime's seconds (wrapping), uvarint nanoseconds
//	if recDirFields: uvarint parent, uvarint next cookie
//
// Nanoseconds are stored as the uvarint of their uint64 bits (so any
// int64 round-trips; 0..999999999 take 1-5 bytes). Varints must be
// minimal, flags known, and the value used up exactly: anything else is
// corrupt (EIO), never a panic.
const (
	recordV1          = 1
	recordV1Size      = 1 + 4 + 4 + 4 + 8 + 8 + 4*12 + 8 + 8
	recordVersion     = 2
	recAtimeIsCtime   = 1 << 0 // atime == ctime, not stored
	recMtimeIsCtime   = 1 << 1 // mtime == ctime, not stored
	recCrtimeIsCtime  = 1 << 2 // crtime == ctime, not stored
	recCrtimeIsAtime  = 1 << 3 // crtime == atime (and not ctime), not stored
	recDirFields      = 1 << 4 // parent and next cookie follow (else both 0)
	recFlagsKnown     = recAtimeIsCtime | recMtimeIsCtime | recCrtimeIsCtime | recCrtimeIsAtime | recDirFields
	recordMaxV2Size   = 2 + 5*binary.MaxVarintLen64 + 4*2*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64
	entryVersion      = 2
	entryV1Size       = 17
	entryMaxV2Size    = 1 + 2*binary.MaxVarintLen64 + 1
	corruptRecordFmt  = "inode %d: corrupt record (%d bytes, version %d): %w"
	corruptV2EntryFmt = "corrupt directory entry (%d bytes, version %d): %w"
)

func putTime(b []byte, t Timespec) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Sec))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nsec))
}

func getTime(b []byte) Timespec {
	return Timespec{Sec: int64(binary.BigEndian.Uint64(b)), Nsec: int64(binary.BigEndian.Uint32(b[8:]))}
}

// encodeRecordV1 is the fixed version 1 encoding, no longer written: the
// tests use it to make volumes as they were.
func encodeRecordV1(r *record) []byte {
	b := make([]byte, 0, recordV1Size)
	b = append(b, recordV1)
	b = binary.BigEndian.AppendUint32(b, r.Mode)
	b = binary.BigEndian.AppendUint32(b, r.UID)
	b = binary.BigEndian.AppendUint32(b, r.GID)
	b = binary.BigEndian.AppendUint64(b, r.Nlink)
	b = binary.BigEndian.AppendUint64(b, r.Size)
	b = putTime(b, r.Atime)
	b = putTime(b, r.Mtime)
	b = putTime(b, r.Ctime)
	b = putTime(b, r.Crtime)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Parent))
	b = binary.BigEndian.AppendUint64(b, uint64(r.NextCookie))
	return b
}

func decodeRecordV1(ino Ino, b []byte) *record {
	r := &record{}
	r.Ino = ino
	r.Mode = binary.BigEndian.Uint32(b[1:])
	r.UID = binary.BigEndian.Uint32(b[5:])
	r.GID = binary.BigEndian.Uint32(b[9:])
	r.Nlink = binary.BigEndian.Uint64(b[13:])
	r.Size = binary.BigEndian.Uint64(b[21:])
	r.Atime = getTime(b[29:])
	r.Mtime = getTime(b[41:])
	r.Ctime = getTime(b[53:])
	r.Crtime = getTime(b[65:])
	r.Parent = Ino(binary.BigEndian.Uint64(b[77:]))
	r.NextCookie = int64(binary.BigEndian.Uint64(b[85:]))
	return r
}

// encodeRecord encodes r in the current version (2).
func encodeRecord(r *record) []byte {
	var flags byte
	if r.Atime == r.Ctime {
		flags |= recAtimeIsCtime
	}
	if r.Mtime == r.Ctime {
		flags |= recMtimeIsCtime
	}
	if r.Crtime == r.Ctime {
		flags |= recCrtimeIsCtime
	} else if r.Crtime == r.Atime {
		flags |= recCrtimeIsAtime
	}
	if r.Parent != 0 || r.NextCookie != 0 {
		flags |= recDirFields
	}
	b := make([]byte, 0, 32)
	b = append(b, recordVersion, flags)
	b = binary.AppendUvarint(b, uint64(r.Mode))
	b = binary.AppendUvarint(b, uint64(r.UID))
	b = binary.AppendUvarint(b, uint64(r.GID))
	b = binary.AppendUvarint(b, r.Nlink)
	b = binary.AppendUvarint(b, r.Size)
	b = binary.AppendVarint(b, r.Ctime.Sec)
	b = binary.AppendUvarint(b, uint64(r.Ctime.Nsec))
	putRel := func(t Timespec) {
		b = binary.AppendVarint(b, int64(uint64(t.Sec)-uint64(r.Ctime.Sec)))
		b = binary.AppendUvarint(b, uint64(t.Nsec))
	}
	if flags&recAtimeIsCtime == 0 {
		putRel(r.Atime)
	}
	if flags&recMtimeIsCtime == 0 {
		putRel(r.Mtime)
	}
	if flags&(recCrtimeIsCtime|recCrtimeIsAtime) == 0 {
		putRel(r.Crtime)
	}
	if flags&recDirFields != 0 {
		b = binary.AppendUvarint(b, uint64(r.Parent))
		b = binary.AppendUvarint(b, uint64(r.NextCookie))
	}
	return b
}

// decodeRecord decodes a record of either version.
func decodeRecord(ino Ino, b []byte) (*record, error) {
	switch firstByte(b) {
	case recordV1:
		if len(b) == recordV1Size {
			return decodeRecordV1(ino, b), nil
		}
	case recordVersion:
		if r, ok := decodeRecordV2(ino, b); ok {
			return r, nil
		}
	}
	return nil, fmt.Errorf(corruptRecordFmt, ino, len(b), firstByte(b), syscall.EIO)
}

func decodeRecordV2(ino Ino, b []byte) (*record, bool) {
	if len(b) < 2 || len(b) > recordMaxV2Size {
		return nil, false
	}
	flags := b[1]
	if flags&^recFlagsKnown != 0 || flags&(recCrtimeIsCtime|recCrtimeIsAtime) == recCrtimeIsCtime|recCrtimeIsAtime {
		return nil, false
	}
	d := varintReader{b: b[2:]}
	r := &record{}
	r.Ino = ino
	r.Mode = d.uint32()
	r.UID = d.uint32()
	r.GID = d.uint32()
	r.Nlink = d.uvarint()
	r.Size = d.uvarint()
	r.Ctime.Sec = d.varint()
	r.Ctime.Nsec = int64(d.uvarint())
	getRel := func() Timespec {
		sec := int64(uint64(r.Ctime.Sec) + uint64(d.varint()))
		return Timespec{Sec: sec, Nsec: int64(d.uvarint())}
	}
	r.Atime, r.Mtime, r.Crtime = r.Ctime, r.Ctime, r.Ctime
	if flags&recAtimeIsCtime == 0 {
		r.Atime = getRel()
	}
	if flags&recMtimeIsCtime == 0 {
		r.Mtime = getRel()
	}
	switch {
	case flags&recCrtimeIsAtime != 0:
		r.Crtime = r.Atime
	case flags&recCrtimeIsCtime == 0:
		r.Crtime = getRel()
	}
	if flags&recDirFields != 0 {
		r.Parent = Ino(d.uvarint())
		r.NextCookie = int64(d.uvarint())
	}
	if d.bad || len(d.b) != 0 {
		return nil, false
	}
	return r, true
}

// varintReader reads minimal varints from b; a truncated, overlong or
// non-minimal one sets bad (and every later read returns 0).
type varintReader struct {
	b   []byte
	bad bool
}

func (d *varintReader) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	// n <= 0: truncated or more than 64 bits. A last byte of 0 after
	// others is a non-minimal encoding (binary.AppendUvarint never
	// writes one): refused, so that each value has one encoding.
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *varintReader) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *varintReader) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.bad = true
		return 0
	}
	return uint32(v)
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// entry is a directory entry as stored under its entry key.
//
// Version 1 (17 bytes, fixed, still read, never written): ino and cookie
// (8 bytes each, big-endian), type. Version 2 (written since issue 19,
// typically 6-10 bytes): the byte 2, uvarint ino, uvarint cookie, type;
// always shorter than 17 bytes: an entry whose version 2 encoding would
// not be (ino and cookie both huge) is written in version 1, so the
// length alone tells the versions apart and the leading byte checks it.
type entry struct {
	Ino    Ino
	Cookie int64
	Type   uint8
}

func encodeEntry(e entry) []byte {
	b := make([]byte, 0, entryMaxV2Size)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(e.Ino))
	b = binary.AppendUvarint(b, uint64(e.Cookie))
	b = append(b, e.Type)
	if len(b) >= entryV1Size {
		return encodeEntryV1(e)
	}
	return b
}

// encodeEntryV1 is the fixed version 1 encoding, written only for an
// entry whose version 2 encoding would be as long.
func encodeEntryV1(e entry) []byte {
	b := make([]byte, 0, entryV1Size)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Ino))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Cookie))
	return append(b, e.Type)
}

func decodeEntry(b []byte) (entry, error) {
	if len(b) == entryV1Size {
		return entry{
			Ino:    Ino(binary.BigEndian.Uint64(b)),
			Cookie: int64(binary.BigEndian.Uint64(b[8:])),
			Type:   b[16],
		}, nil
	}
	if len(b) < 4 || len(b) > entryV1Size || b[0] != entryVersion {
		return entry{}, fmt.Errorf(corruptV2EntryFmt, len(b), firstByte(b), syscall.EIO)
	}
	d := varintReader{b: b[1 : len(b)-1]}
	e := entry{Ino: Ino(d.uvarint()), Cookie: int64(d.uvarint()), Type: b[len(b)-1]}
	if d.bad || len(d.b) != 0 {
		return entry{}, fmt.Errorf(corruptV2EntryFmt, len(b), firstByte(b), syscall.EIO)
	}
	return e, nil
}

// encodeCookieValue is the value under a cookie key: ino, type, name.
func encodeCookieValue(ino Ino, typ uint8, name string) []byte {
	b := make([]byte, 0, 9+len(name))
	b = binary.BigEndian.AppendUint64(b, uint64(ino))
	b = append(b, typ)
	return append(b, name...)
}

func decodeCookieValue(b []byte) (Ino, uint8, string, error) {
	if len(b) < 10 {
		return 0, 0, "", fmt.Errorf("corrupt cookie entry (%d bytes): %w", len(b), syscall.EIO)
	}
	return Ino(binary.BigEndian.Uint64(b)), b[8], string(b[9:]), nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("corrupt counter (%d bytes): %w", len(b), syscall.EIO)
	}
	return binary.BigEndian.Uint64(b), nil
}
