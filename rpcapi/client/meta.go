package client

import (
	"context"
	"fmt"
	"math"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// binMeta makes an idempotent metadata call on the binary channel (see
// PROTOCOL.md, "Metadata on the binary channel"), with the same retries as
// every call, and returns the reply payload. name, if not empty, is the
// request payload.
func (m *Mount) binMeta(ctx context.Context, op uint16, ino, off uint64, length uint32, name string, dstSize int) ([]byte, error) {
	method := wire.OpName(op)
	if len(name) > wire.MaxNamePayload {
		// The server would answer, then close the connection.
		return nil, &Error{Op: method, Errno: syscall.ENAMETOOLONG, Msg: fmt.Sprintf("name of %d bytes", len(name))}
	}
	var payload []byte
	if wire.HasPayload(op) {
		payload = []byte(name)
		length = uint32(len(payload))
	}
	var data []byte
	_, err := m.do(ctx, method, func(ctx context.Context, st *mountState) error {
		var err error
		_, data, err = m.c.binAttemptBuf(ctx, method, wire.RequestHeader{
			Opcode: op, MountID: st.MountID, Inode: ino, Offset: off, Length: length, Flags: statExt(op), As: m.as,
		}, payload, make([]byte, dstSize), dstSize == 0)
		return err
	})
	return data, err
}

// binStat makes a call whose reply is a stat record.
func (m *Mount) binStat(ctx context.Context, op uint16, ino uint64, name string) (Stat, error) {
	data, err := m.binMeta(ctx, op, ino, 0, 0, name, wire.StatExtSize)
	if err != nil {
		return Stat{}, err
	}
	st, derr := wire.DecodeStatExt(data)
	if derr != nil {
		return Stat{}, protocolError(wire.OpName(op), derr)
	}
	return st, nil
}

// Lookup returns the inode number of name in directory dir.
func (m *Mount) Lookup(ctx context.Context, dir uint64, name string) (uint64, error) {
	st, err := m.binStat(ctx, wire.OpLookup, dir, name)
	return st.Ino, err
}

// GetStat returns the attributes of inode ino.
func (m *Mount) GetStat(ctx context.Context, ino uint64) (Stat, error) {
	return m.binStat(ctx, wire.OpGetStat, ino, "")
}

// Flush returns once the data and metadata of file ino are on stable
// storage. A missing inode is EBADF.
func (m *Mount) Flush(ctx context.Context, ino uint64) error {
	_, err := m.binMeta(ctx, wire.OpFlush, ino, 0, 0, "", 0)
	return toEBADF(err)
}

// ReadDirPlus is ReadDir with each entry's Stat filled in.
func (m *Mount) ReadDirPlus(ctx context.Context, ino uint64, prevCookie int64, max int) ([]DirEntry, bool, error) {
	if max < 0 || uint64(max) > math.MaxUint32 {
		return nil, false, &Error{Op: wire.MethodReaddirPlus, Errno: syscall.EINVAL, Msg: fmt.Sprintf("max %d", max)}
	}
	data, err := m.binMeta(ctx, wire.OpReaddirPlus, ino, uint64(prevCookie), uint32(max), "", 0)
	if err != nil {
		return nil, false, err
	}
	ents, eof, derr := wire.DecodeReaddirPlusExt(data)
	if derr != nil {
		return nil, false, protocolError(wire.MethodReaddirPlus, derr)
	}
	return ents, eof, nil
}
