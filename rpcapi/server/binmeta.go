package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// The binary forms of readdir_plus with xattrs, open, close, lock,
// setattr, the xattr calls and create with open (PROTOCOL.md section 2,
// opcodes 11 to 19).
// Each decodes its fields into the JSON form's params and runs the same
// code as the JSON method, so both channels share every check.

// binaryMeta runs one of these opcodes; ok is false for any other opcode.
func (s *Server) binaryMeta(ctx context.Context, e *env, h wire.RequestHeader, payload []byte) (data []byte, ok bool, err error) {
	ino := inode.Ino(h.Inode)
	bad := func(err error) ([]byte, bool, error) {
		return nil, true, fmt.Errorf("binary %s: %v: %w", wire.OpName(h.Opcode), err, syscall.EINVAL)
	}
	switch h.Opcode {
	case wire.OpReaddirPlusXattr:
		max, names, err := wire.DecodeXattrDirRequest(payload)
		if err != nil {
			return bad(err)
		}
		ents, eof, err := e.readdirXattr(ctx, ino, int64(h.Offset), max, names, wire.XattrDirBudget)
		if err != nil {
			return nil, true, err
		}
		b := make([]byte, 1, 1+len(ents)*(18+32+wire.StatRecordSize(h.Flags)+16))
		if eof {
			b[0] = 1
		}
		for i := range ents {
			b = wire.AppendDirEntryRecord(b, &ents[i], h.Flags)
			b = wire.AppendEntryXattrs(b, ents[i].Xattr)
		}
		return b, true, nil
	case wire.OpOpen:
		if h.Offset&^uint64(3|wire.OpenReclaimBit) != 0 {
			return nil, true, fmt.Errorf("binary open: flags %#x: only the access mode 0, 1 or 2: %w", h.Offset, syscall.EINVAL)
		}
		r, err := s.open(ctx, e, &wire.OpenParams{MountID: h.MountID, Inode: h.Inode, Flags: uint32(h.Offset & 3),
			Reclaim: h.Offset&wire.OpenReclaimBit != 0})
		if err != nil {
			return nil, true, err
		}
		or := r.(wire.OpenResult)
		b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+wire.StatExtSize), or.Fh)
		return wire.AppendStatRecord(b, &or.Stat, h.Flags), true, nil
	case wire.OpCreateOpen:
		mode, acc := h.Offset&0xffffffff, uint32(h.Offset>>32)
		if err := checkMode(wire.MethodCreate, mode); err != nil {
			return nil, true, err
		}
		a, fh, err := s.createOpen(ctx, e, "binary create_open", ino, string(payload), uint32(mode), acc)
		if err != nil {
			return nil, true, err
		}
		st := e.stat(a)
		b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+wire.StatExtSize), fh)
		return wire.AppendStatRecord(b, &st, h.Flags), true, nil
	case wire.OpClose:
		return nil, true, s.closeHandle(ctx, e.m.ID, h.Offset)
	case wire.OpLock:
		p, err := wire.DecodeLockRequest(payload)
		if err != nil {
			return bad(err)
		}
		p.MountID = h.MountID
		r, err := s.lock(ctx, e, &p)
		if err != nil || p.Cmd != wire.LockGetLk {
			return nil, true, err
		}
		lr := r.(wire.LockResult)
		return wire.AppendLockReply(nil, &lr), true, nil
	case wire.OpSetattr:
		f, err := wire.DecodeSetattr(payload)
		if err != nil {
			return bad(err)
		}
		sa, err := setattr(&f)
		if err != nil {
			return nil, true, err
		}
		a, err := e.fs.SetAttr(ctx, e.caller(), ino, sa)
		if err != nil {
			return nil, true, err
		}
		st := e.stat(a)
		return wire.AppendStatRecord(make([]byte, 0, wire.StatExtSize), &st, h.Flags), true, nil
	case wire.OpGetXattr:
		v, err := e.fs.GetXattr(ctx, e.caller(), ino, string(payload))
		if err != nil {
			return nil, true, err
		}
		return v, true, nil
	case wire.OpSetXattr:
		name, value, err := wire.DecodeSetXattr(payload)
		if err != nil {
			return bad(err)
		}
		if h.Offset > 3 {
			return nil, true, fmt.Errorf("binary set_xattr: flags %#x: %w", h.Offset, syscall.EINVAL)
		}
		return nil, true, e.fs.SetXattr(ctx, e.caller(), ino, name, value, int(h.Offset))
	case wire.OpListXattr:
		names, err := e.fs.ListXattr(ctx, e.caller(), ino)
		if err != nil {
			return nil, true, err
		}
		return wire.AppendXattrNames(nil, names), true, nil
	}
	return nil, false, nil
}

// binaryAccessName is the name a binary request carries, for the access
// log (never an xattr value or file data).
func binaryAccessName(op uint16, payload []byte) string {
	switch op {
	case wire.OpLookup, wire.OpCreate, wire.OpUnlink, wire.OpLookupCI, wire.OpGetXattr, wire.OpCreateOpen:
		return string(payload)
	case wire.OpSetXattr:
		if name, _, err := wire.DecodeSetXattr(payload); err == nil {
			return name
		}
	}
	return ""
}

// readdirXattr lists directory dir after prev, at most max entries (0:
// the default), each with its attributes and its xattrs (entryXattrs). A
// batch ends early after the entry that brings the xattr bytes over
// budget.
func (e *env) readdirXattr(ctx context.Context, dir inode.Ino, prev int64, max uint32, names []string, budget int) ([]wire.DirEntry, bool, error) {
	if len(names) > wire.MaxXattrDirNames {
		return nil, false, fmt.Errorf("readdir_plus: %d xattr names (at most %d): %w", len(names), wire.MaxXattrDirNames, syscall.EINVAL)
	}
	for _, n := range names {
		if n == "" || len(n) > inode.MaxXattrNameLen {
			return nil, false, fmt.Errorf("readdir_plus: xattr name of %d bytes: %w", len(n), syscall.EINVAL)
		}
	}
	ents, eof, err := e.fs.ReadDir(ctx, e.caller(), dir, prev, readdirBatch(uint64(max)), true)
	if err != nil {
		return nil, false, err
	}
	out := make([]wire.DirEntry, 0, len(ents))
	used := 0
	for i, d := range ents {
		st := e.stat(d.Attr)
		x := e.entryXattrs(ctx, d.Ino, names)
		out = append(out, wire.DirEntry{Name: d.Name, Inode: uint64(d.Ino), Type: d.Type, Cookie: d.Cookie, Stat: &st, Xattr: x})
		if used += x.Size(); used > budget && i < len(ents)-1 {
			return out, false, nil
		}
	}
	return out, eof, nil
}

// entryXattrs is what list_xattr and get_xattr of each name would answer
// for ino, as the caller; an error becomes the entry's errno.
func (e *env) entryXattrs(ctx context.Context, ino inode.Ino, names []string) *wire.EntryXattrs {
	x := &wire.EntryXattrs{Names: []string{}, Values: make([]wire.XattrValue, len(names))}
	list, err := e.fs.ListXattr(ctx, e.caller(), ino)
	if err != nil {
		x.Errno = uint32(errnoOf(err))
	} else {
		x.Names = list
	}
	for i, n := range names {
		v := &x.Values[i]
		v.Name = n
		if err == nil && !slices.Contains(list, n) {
			// Not listed: absent, or a name the caller may not see,
			// which get_xattr reports as absent too.
			v.Errno = uint32(syscall.ENODATA)
			continue
		}
		val, gerr := e.fs.GetXattr(ctx, e.caller(), ino, n)
		if gerr != nil {
			v.Errno = uint32(errnoOf(gerr))
			continue
		}
		if val == nil {
			val = []byte{}
		}
		v.Value = val
	}
	return x
}

// errnoOf is the errno an error carries (EIO for one without).
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EIO
}
