package inode

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Key layout in the backend's ordered map. Inode numbers and cookies are
// big-endian so that keys sort numerically.
//
//	i<ino>               inode record (encodeAttr)
//	e<dir><name>         directory entry: ino, cookie, type
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

const recordVersion = 1
const recordSize = 1 + 4 + 4 + 4 + 8 + 8 + 4*12 + 8 + 8

func putTime(b []byte, t Timespec) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Sec))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nsec))
}

func getTime(b []byte) Timespec {
	return Timespec{Sec: int64(binary.BigEndian.Uint64(b)), Nsec: int64(binary.BigEndian.Uint32(b[8:]))}
}

func encodeRecord(r *record) []byte {
	b := make([]byte, 0, recordSize)
	b = append(b, recordVersion)
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

func decodeRecord(ino Ino, b []byte) (*record, error) {
	if len(b) != recordSize || b[0] != recordVersion {
		return nil, fmt.Errorf("inode %d: corrupt record (%d bytes, version %d): %w", ino, len(b), firstByte(b), syscall.EIO)
	}
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
	return r, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// entry is a directory entry as stored under its entry key.
type entry struct {
	Ino    Ino
	Cookie int64
	Type   uint8
}

func encodeEntry(e entry) []byte {
	b := make([]byte, 0, 17)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Ino))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Cookie))
	return append(b, e.Type)
}

func decodeEntry(b []byte) (entry, error) {
	if len(b) != 17 {
		return entry{}, fmt.Errorf("corrupt directory entry (%d bytes): %w", len(b), syscall.EIO)
	}
	return entry{
		Ino:    Ino(binary.BigEndian.Uint64(b)),
		Cookie: int64(binary.BigEndian.Uint64(b[8:])),
		Type:   b[16],
	}, nil
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
