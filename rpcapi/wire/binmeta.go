package wire

import (
	"encoding/binary"
	"fmt"
)

// The gateway's per-file calls on the binary channel (PROTOCOL.md section
// 2, "Handles, locks, attributes and xattrs"): open, close, lock, setattr
// and the xattr calls, with the semantics and errnos of their JSON-RPC
// forms. Opcodes 11 to 20 are this group's (11 is READDIR_PLUS_XATTR).
const (
	// OpOpen opens Inode with the access mode in Offset's low two bits
	// (OpenReclaimBit: reclaim); the reply is the handle (u64) and the
	// stat record.
	OpOpen = 12
	// OpClose closes handle Offset.
	OpClose = 13
	// OpLock is lock's getlk or setlk (not setlkw); the payload is
	// AppendLockRequest's, a getlk reply AppendLockReply's.
	OpLock = 14
	// OpSetattr is setattr on Inode; the payload is AppendSetattr's, the
	// reply the stat record.
	OpSetattr = 15
	// OpGetXattr returns the value of the xattr named by the payload.
	OpGetXattr = 16
	// OpSetXattr sets an xattr of Inode, flags in Offset; the payload is
	// a length byte, the name, then the value.
	OpSetXattr = 17
	// OpListXattr returns Inode's xattr names, each followed by a NUL.
	OpListXattr = 18
	// OpCreateOpen is create with "open", one request for open(2) with
	// O_CREAT|O_EXCL: the file named by the payload is created in
	// directory Inode with the permission bits in Offset's low 32 bits
	// (0o7777 used, as CREATE) and opened with the access mode in the
	// high 32 bits (OpenReadOnly, ...; see CreateOpenOffset), which the
	// creator gets whatever the new mode says. The reply is OPEN's: the
	// handle (u64), then the stat record.
	OpCreateOpen = 19

	// opLast is the highest opcode this package knows.
	opLast = OpCreateOpen
)

// OpenReclaimBit in OPEN's offset asks for open's reclaim.
const OpenReclaimBit = 1 << 8

// MaxSetXattrPayload is the largest SET_XATTR payload: a length byte, a
// 255-byte name and a 64 KiB value.
const MaxSetXattrPayload = 1 + 255 + 64<<10

// SetattrPayloadSize is the size of SETATTR's payload.
const SetattrPayloadSize = 88

// Lock commands and types on the binary channel.
const (
	binLockGetLk = 0
	binLockSetLk = 1
	binLockRead  = 0
	binLockWrite = 1
	binLockUnl   = 2
)

// AppendLockRequest appends LOCK's payload: fh, start, len (u64 each),
// cmd (0 getlk, 1 setlk), type (0 read, 1 write, 2 unlock), reclaim (0 or
// 1), the owner's length (u8) and the owner.
func AppendLockRequest(b []byte, p *LockParams) []byte {
	b = binary.LittleEndian.AppendUint64(b, p.Fh)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Start))
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Len))
	cmd := byte(binLockSetLk)
	if p.Cmd == LockGetLk {
		cmd = binLockGetLk
	}
	typ := byte(binLockUnl)
	switch p.Type {
	case LockRead:
		typ = binLockRead
	case LockWrite:
		typ = binLockWrite
	}
	rec := byte(0)
	if p.Reclaim {
		rec = 1
	}
	b = append(b, cmd, typ, rec, byte(len(p.Owner)))
	return append(b, p.Owner...)
}

// DecodeLockRequest decodes LOCK's payload into lock's params.
func DecodeLockRequest(b []byte) (LockParams, error) {
	var p LockParams
	if len(b) < 28 || len(b) != 28+int(b[27]) {
		return p, fmt.Errorf("%w: lock payload of %d bytes", ErrBadFrame, len(b))
	}
	p.Fh = binary.LittleEndian.Uint64(b)
	p.Start = int64(binary.LittleEndian.Uint64(b[8:]))
	p.Len = int64(binary.LittleEndian.Uint64(b[16:]))
	switch b[24] {
	case binLockGetLk:
		p.Cmd = LockGetLk
	case binLockSetLk:
		p.Cmd = LockSetLk
	default:
		return p, fmt.Errorf("%w: lock cmd %d", ErrBadFrame, b[24])
	}
	switch b[25] {
	case binLockRead:
		p.Type = LockRead
	case binLockWrite:
		p.Type = LockWrite
	case binLockUnl:
		p.Type = LockUnlock
	default:
		return p, fmt.Errorf("%w: lock type %d", ErrBadFrame, b[25])
	}
	if b[26] > 1 {
		return p, fmt.Errorf("%w: lock reclaim %d", ErrBadFrame, b[26])
	}
	p.Reclaim = b[26] == 1
	p.Owner = string(b[28:])
	return p, nil
}

// AppendLockReply appends a getlk reply: type (u8: 0 read, 1 write, 2
// unlock: nothing conflicts), start, len (u64), the owner's length (u8)
// and the owner.
func AppendLockReply(b []byte, r *LockResult) []byte {
	typ := byte(binLockUnl)
	switch r.Type {
	case LockRead:
		typ = binLockRead
	case LockWrite:
		typ = binLockWrite
	}
	var start, length int64
	var owner string
	if r.Start != nil {
		start = *r.Start
	}
	if r.Len != nil {
		length = *r.Len
	}
	if r.Owner != nil {
		owner = *r.Owner
	}
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint64(b, uint64(start))
	b = binary.LittleEndian.AppendUint64(b, uint64(length))
	b = append(b, byte(len(owner)))
	return append(b, owner...)
}

// DecodeLockReply decodes a getlk reply.
func DecodeLockReply(b []byte) (LockResult, error) {
	if len(b) < 18 || len(b) != 18+int(b[17]) || b[0] > binLockUnl {
		return LockResult{}, fmt.Errorf("%w: lock reply of %d bytes", ErrBadFrame, len(b))
	}
	if b[0] == binLockUnl {
		return LockResult{Type: LockUnlock}, nil
	}
	start := int64(binary.LittleEndian.Uint64(b[1:]))
	length := int64(binary.LittleEndian.Uint64(b[9:]))
	owner := string(b[18:])
	typ := LockRead
	if b[0] == binLockWrite {
		typ = LockWrite
	}
	return LockResult{Type: typ, Start: &start, Len: &length, Owner: &owner}, nil
}

// AppendSetattr appends SETATTR's 88-byte payload: mask (u32), 4 zero
// bytes, then size, mode, uid, gid, and sec and nsec of atime, mtime and
// crtime (u64 each); a field f does not give (nil) is sent as 0, and the
// server uses only the fields the mask selects.
func AppendSetattr(b []byte, f *SetattrFields) []byte {
	b = binary.LittleEndian.AppendUint32(b, f.Mask)
	b = binary.LittleEndian.AppendUint32(b, 0)
	u64 := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	u32 := func(p *uint32) uint64 {
		if p == nil {
			return 0
		}
		return uint64(*p)
	}
	ts := func(t *Timespec) (uint64, uint64) {
		if t == nil {
			return 0, 0
		}
		return uint64(t.Sec), uint64(t.Nsec)
	}
	as, an := ts(f.Atime)
	ms, mn := ts(f.Mtime)
	cs, cn := ts(f.Crtime)
	for _, v := range [...]uint64{u64(f.Size), u32(f.Mode), u32(f.UID), u32(f.GID), as, an, ms, mn, cs, cn} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// DecodeSetattr decodes SETATTR's payload as setattr's fields: every
// field the mask selects is given.
func DecodeSetattr(b []byte) (SetattrFields, error) {
	if len(b) != SetattrPayloadSize {
		return SetattrFields{}, fmt.Errorf("%w: setattr payload of %d bytes", ErrBadFrame, len(b))
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8+8*i:]) }
	for _, i := range []int{1, 2, 3} {
		if u(i) > 1<<32-1 {
			return SetattrFields{}, fmt.Errorf("%w: setattr field %d out of range", ErrBadFrame, i)
		}
	}
	a := Attrs{Mask: binary.LittleEndian.Uint32(b), Size: u(0), Mode: uint32(u(1)), UID: uint32(u(2)), GID: uint32(u(3)),
		Atime:  &Timespec{Sec: int64(u(4)), Nsec: int64(u(5))},
		Mtime:  &Timespec{Sec: int64(u(6)), Nsec: int64(u(7))},
		Crtime: &Timespec{Sec: int64(u(8)), Nsec: int64(u(9))}}
	return a.Fields(), nil
}

// AppendSetXattr appends SET_XATTR's payload.
func AppendSetXattr(b []byte, name string, value []byte) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, value...)
}

// DecodeSetXattr decodes SET_XATTR's payload.
func DecodeSetXattr(b []byte) (name string, value []byte, err error) {
	if len(b) < 1 || b[0] == 0 || len(b) < 1+int(b[0]) {
		return "", nil, fmt.Errorf("%w: set_xattr payload", ErrBadFrame)
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], nil
}

// AppendXattrNames appends names as listxattr(2) returns them: each
// followed by a NUL.
func AppendXattrNames(b []byte, names []string) []byte {
	for _, s := range names {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}
