package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Binary channel constants.
const (
	// RequestMagic starts every request frame ("PFSB").
	RequestMagic = "PFSB"
	// ReplyMagic starts every reply frame ("PFSR").
	ReplyMagic = "PFSR"
	// RequestHeaderSize is the size of a request header in bytes.
	RequestHeaderSize = 48
	// ReplyHeaderSize is the size of a reply header in bytes.
	ReplyHeaderSize = 32

	// OpRead reads Length bytes at Offset.
	OpRead = 1
	// OpWrite writes the Length payload bytes that follow the header.
	OpWrite = 2
	// OpLookup looks up the name in the payload in directory Inode; the
	// reply carries the entry's stat record.
	OpLookup = 3
	// OpGetStat returns Inode's stat record.
	OpGetStat = 4
	// OpCreate creates the file named by the payload in directory Inode
	// with the permission bits in Offset; the reply carries its stat
	// record.
	OpCreate = 5
	// OpUnlink removes the name in the payload from directory Inode.
	OpUnlink = 6
	// OpReaddirPlus lists directory Inode after cookie int64(Offset), at
	// most Length entries (0: the server's default); the reply carries
	// an eof byte and the entries with their stat records.
	OpReaddirPlus = 7
	// OpFlush makes Inode's data and metadata durable.
	OpFlush = 8

	// StatSize is the size of an encoded stat record.
	StatSize = 120
	// MaxNamePayload is the largest name payload accepted; anything
	// larger breaks the stream (the server closes the connection).
	MaxNamePayload = 4096

	// ReplyFlagBadMount is set in ReplyHeader.Flags when the mount id is
	// bad or stale.
	ReplyFlagBadMount = 1
)

// ErrBadFrame is returned for a frame that breaks the stream: a wrong
// magic, an unknown version or opcode, or nonzero flags.
var ErrBadFrame = errors.New("wire: malformed binary frame")

// RequestHeader is a binary-channel request header.
type RequestHeader struct {
	Opcode  uint16
	ID      uint64
	MountID uint64
	Inode   uint64
	Offset  uint64
	Length  uint32
	// Flags: 0, or RequestFlagStatExt, RequestFlagIdentity and
	// RequestFlagHandle.
	Flags uint32
	// As is the per-call identity: the identity block that follows the
	// header. AppendRequest sets RequestFlagIdentity and appends the
	// block when it is not nil; ReadRequest reads it.
	As *Identity
	// Fh is an open handle the call goes through (RequestFlagHandle):
	// AppendRequest sets the flag and appends it when it is not 0;
	// ReadRequest reads it.
	Fh uint64
}

// ReplyHeader is a binary-channel reply header.
type ReplyHeader struct {
	Opcode uint16
	ID     uint64
	Errno  uint32
	Flags  uint32
	Length uint32
}

// AppendRequest appends h's encoding to b.
func AppendRequest(b []byte, h RequestHeader) []byte {
	b = append(b, RequestMagic...)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = binary.LittleEndian.AppendUint16(b, h.Opcode)
	b = binary.LittleEndian.AppendUint64(b, h.ID)
	b = binary.LittleEndian.AppendUint64(b, h.MountID)
	b = binary.LittleEndian.AppendUint64(b, h.Inode)
	b = binary.LittleEndian.AppendUint64(b, h.Offset)
	b = binary.LittleEndian.AppendUint32(b, h.Length)
	flags := h.Flags
	if h.As != nil {
		flags |= RequestFlagIdentity
	}
	if h.Fh != 0 {
		flags |= RequestFlagHandle
	}
	b = binary.LittleEndian.AppendUint32(b, flags)
	if h.As != nil {
		b = AppendIdentity(b, h.As)
	}
	if h.Fh != 0 {
		b = binary.LittleEndian.AppendUint64(b, h.Fh)
	}
	return b
}

// DecodeRequest decodes a request header from the first RequestHeaderSize
// bytes of b. It returns an error wrapping ErrBadFrame if the frame breaks
// the stream.
func DecodeRequest(b []byte) (RequestHeader, error) {
	if len(b) < RequestHeaderSize {
		return RequestHeader{}, fmt.Errorf("%w: short header (%d bytes)", ErrBadFrame, len(b))
	}
	if string(b[0:4]) != RequestMagic {
		return RequestHeader{}, fmt.Errorf("%w: magic %q", ErrBadFrame, b[0:4])
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != Version {
		return RequestHeader{}, fmt.Errorf("%w: version %d", ErrBadFrame, v)
	}
	h := RequestHeader{
		Opcode:  binary.LittleEndian.Uint16(b[6:]),
		ID:      binary.LittleEndian.Uint64(b[8:]),
		MountID: binary.LittleEndian.Uint64(b[16:]),
		Inode:   binary.LittleEndian.Uint64(b[24:]),
		Offset:  binary.LittleEndian.Uint64(b[32:]),
		Length:  binary.LittleEndian.Uint32(b[40:]),
	}
	if h.Opcode < OpRead || h.Opcode > opLast {
		return RequestHeader{}, fmt.Errorf("%w: opcode %d", ErrBadFrame, h.Opcode)
	}
	h.Flags = binary.LittleEndian.Uint32(b[44:])
	if h.Flags&^(RequestFlagStatExt|RequestFlagIdentity|RequestFlagHandle) != 0 {
		return RequestHeader{}, fmt.Errorf("%w: flags %#x", ErrBadFrame, h.Flags)
	}
	return h, nil
}

// AppendReply appends h's encoding to b.
func AppendReply(b []byte, h ReplyHeader) []byte {
	b = append(b, ReplyMagic...)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = binary.LittleEndian.AppendUint16(b, h.Opcode)
	b = binary.LittleEndian.AppendUint64(b, h.ID)
	b = binary.LittleEndian.AppendUint32(b, h.Errno)
	b = binary.LittleEndian.AppendUint32(b, h.Flags)
	b = binary.LittleEndian.AppendUint32(b, h.Length)
	b = binary.LittleEndian.AppendUint32(b, 0) // reserved
	return b
}

// DecodeReply decodes a reply header from the first ReplyHeaderSize bytes
// of b.
func DecodeReply(b []byte) (ReplyHeader, error) {
	if len(b) < ReplyHeaderSize {
		return ReplyHeader{}, fmt.Errorf("%w: short reply header (%d bytes)", ErrBadFrame, len(b))
	}
	if string(b[0:4]) != ReplyMagic {
		return ReplyHeader{}, fmt.Errorf("%w: reply magic %q", ErrBadFrame, b[0:4])
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != Version {
		return ReplyHeader{}, fmt.Errorf("%w: reply version %d", ErrBadFrame, v)
	}
	return ReplyHeader{
		Opcode: binary.LittleEndian.Uint16(b[6:]),
		ID:     binary.LittleEndian.Uint64(b[8:]),
		Errno:  binary.LittleEndian.Uint32(b[16:]),
		Flags:  binary.LittleEndian.Uint32(b[20:]),
		Length: binary.LittleEndian.Uint32(b[24:]),
	}, nil
}

// ReadRequest reads one request header from r, its identity block (into
// As) and its handle (into Fh) if its flags say it has them.
func ReadRequest(r io.Reader, buf *[RequestHeaderSize]byte) (RequestHeader, error) {
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return RequestHeader{}, err
	}
	h, err := DecodeRequest(buf[:])
	if err != nil || h.Flags&(RequestFlagIdentity|RequestFlagHandle) == 0 {
		return h, err
	}
	if h.Flags&RequestFlagIdentity != 0 {
		if h.As, err = ReadIdentity(r); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return RequestHeader{}, err
		}
	}
	if h.Flags&RequestFlagHandle != 0 {
		var fb [HandleBlockSize]byte
		if _, err := io.ReadFull(r, fb[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return RequestHeader{}, err
		}
		h.Fh = binary.LittleEndian.Uint64(fb[:])
	}
	return h, nil
}

// ReadReply reads one reply header from r.
func ReadReply(r io.Reader, buf *[ReplyHeaderSize]byte) (ReplyHeader, error) {
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return ReplyHeader{}, err
	}
	return DecodeReply(buf[:])
}

// OpName is the name of a binary opcode, as in the JSON-RPC method table
// ("read", "lookup", ...), or "" for an unknown one.
func OpName(op uint16) string {
	switch op {
	case OpRead:
		return MethodRead
	case OpWrite:
		return MethodWrite
	case OpLookup:
		return MethodLookup
	case OpGetStat:
		return MethodGetStat
	case OpCreate:
		return MethodCreate
	case OpUnlink:
		return MethodUnlink
	case OpReaddirPlus:
		return MethodReaddirPlus
	case OpFlush:
		return MethodFlush
	case OpLookupCI:
		return MethodLookupCI
	case OpAuth:
		return MethodAuth
	case OpReaddirPlusXattr:
		return MethodReaddirPlus
	case OpOpen:
		return MethodOpen
	case OpClose:
		return MethodClose
	case OpLock:
		return MethodLock
	case OpSetattr:
		return MethodSetattr
	case OpGetXattr:
		return MethodGetXattr
	case OpSetXattr:
		return MethodSetXattr
	case OpListXattr:
		return MethodListXattr
	case OpCreateOpen:
		return MethodCreate
	}
	return ""
}

// HasPayload reports whether a request with opcode op carries Length
// payload bytes after its header (WRITE data, or a name).
func HasPayload(op uint16) bool {
	switch op {
	case OpWrite, OpLookup, OpCreate, OpUnlink, OpLookupCI, OpAuth,
		OpReaddirPlusXattr, OpLock, OpSetattr, OpGetXattr, OpSetXattr, OpCreateOpen:
		return true
	}
	return false
}

// AppendStat appends st's 120-byte encoding: fifteen little-endian 64-bit
// fields, ino, mode, nlink, uid, gid, size, dev, then seconds and
// nanoseconds of atime, mtime, ctime and crtime.
func AppendStat(b []byte, st *Stat) []byte {
	for _, v := range [...]uint64{st.Ino, uint64(st.Mode), st.Nlink, uint64(st.UID), uint64(st.GID), st.Size, st.Dev,
		uint64(st.Atime.Sec), uint64(st.Atime.Nsec), uint64(st.Mtime.Sec), uint64(st.Mtime.Nsec),
		uint64(st.Ctime.Sec), uint64(st.Ctime.Nsec), uint64(st.Crtime.Sec), uint64(st.Crtime.Nsec)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// DecodeStat decodes a stat record from the first StatSize bytes of b.
func DecodeStat(b []byte) (Stat, error) {
	if len(b) < StatSize {
		return Stat{}, fmt.Errorf("%w: short stat record (%d bytes)", ErrBadFrame, len(b))
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	return Stat{
		Ino: u(0), Mode: uint32(u(1)), Nlink: u(2), UID: uint32(u(3)), GID: uint32(u(4)), Size: u(5), Dev: u(6),
		Atime:  Timespec{Sec: int64(u(7)), Nsec: int64(u(8))},
		Mtime:  Timespec{Sec: int64(u(9)), Nsec: int64(u(10))},
		Ctime:  Timespec{Sec: int64(u(11)), Nsec: int64(u(12))},
		Crtime: Timespec{Sec: int64(u(13)), Nsec: int64(u(14))},
	}, nil
}

// AppendDirEntry appends one READDIR_PLUS entry: cookie (int64), inode,
// type (1 byte), name length (1 byte), the name, and the stat record.
func AppendDirEntry(b []byte, e *DirEntry) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Cookie))
	b = binary.LittleEndian.AppendUint64(b, e.Inode)
	b = append(b, e.Type, byte(len(e.Name)))
	b = append(b, e.Name...)
	var st Stat
	if e.Stat != nil {
		st = *e.Stat
	}
	return AppendStat(b, &st)
}

// DecodeReaddirPlus decodes a READDIR_PLUS reply payload: the eof byte,
// then entries.
func DecodeReaddirPlus(b []byte) (entries []DirEntry, eof bool, err error) {
	return decodeDirEntries(b, 0, false, nil)
}

// decodeDirEntries decodes the eof byte and the entries of a READDIR_PLUS
// reply (stat records as flags say) or, with xattrs, of a
// READDIR_PLUS_XATTR reply, whose entries are each followed by their
// xattr block for names.
func decodeDirEntries(b []byte, flags uint32, xattrs bool, names []string) (entries []DirEntry, eof bool, err error) {
	if len(b) < 1 {
		return nil, false, fmt.Errorf("%w: empty readdir_plus payload", ErrBadFrame)
	}
	statSize := StatRecordSize(flags)
	eof = b[0] != 0
	b = b[1:]
	for len(b) > 0 {
		if len(b) < 18 {
			return nil, false, fmt.Errorf("%w: short directory entry", ErrBadFrame)
		}
		e := DirEntry{Cookie: int64(binary.LittleEndian.Uint64(b)), Inode: binary.LittleEndian.Uint64(b[8:]), Type: b[16]}
		n := int(b[17])
		b = b[18:]
		if len(b) < n+statSize {
			return nil, false, fmt.Errorf("%w: short directory entry", ErrBadFrame)
		}
		e.Name = string(b[:n])
		var st Stat
		if statSize == StatExtSize {
			st, _ = DecodeStatExt(b[n:]) // the length is checked above
		} else {
			st, _ = DecodeStat(b[n:])
		}
		e.Stat = &st
		b = b[n+statSize:]
		if xattrs {
			x, used, err := decodeEntryXattrs(b, names)
			if err != nil {
				return nil, false, err
			}
			e.Xattr = x
			b = b[used:]
		}
		entries = append(entries, e)
	}
	return entries, eof, nil
}
