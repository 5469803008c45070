package client

import (
	"context"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Fallocate modes: Linux's FALLOC_FL_* bits.
const (
	FallocKeepSize  = wire.FallocKeepSize
	FallocPunchHole = wire.FallocPunchHole
	FallocZeroRange = wire.FallocZeroRange
)

// Fallocate is fallocate(2) on file ino: mode 0 allocates [off, off+length)
// and extends the size past its end; FallocKeepSize keeps the size;
// FallocPunchHole|FallocKeepSize deallocates the range (it reads as
// zeros); FallocZeroRange zeroes it. Other modes are EOPNOTSUPP, length 0
// is EINVAL. It is idempotent: a retry does the same again.
func (m *Mount) Fallocate(ctx context.Context, ino uint64, mode uint32, off, length uint64) error {
	return m.call(ctx, wire.MethodFallocate, func(id uint64) any {
		return wire.FallocateParams{MountID: id, Inode: ino, Mode: mode, Offset: off, Length: length}
	}, nil)
}

// SeekData returns the offset of the first data at or after off in file
// ino (lseek SEEK_DATA); ENXIO at or past the end or when only holes
// follow.
func (m *Mount) SeekData(ctx context.Context, ino uint64, off uint64) (uint64, error) {
	return m.lseek(ctx, ino, off, wire.WhenceData)
}

// SeekHole returns the offset of the first hole at or after off in file
// ino (lseek SEEK_HOLE); the end of the file counts as a hole; ENXIO at or
// past the end.
func (m *Mount) SeekHole(ctx context.Context, ino uint64, off uint64) (uint64, error) {
	return m.lseek(ctx, ino, off, wire.WhenceHole)
}

func (m *Mount) lseek(ctx context.Context, ino, off uint64, whence string) (uint64, error) {
	var r wire.LseekResult
	err := m.call(ctx, wire.MethodLseek, func(id uint64) any {
		return wire.LseekParams{MountID: id, Inode: ino, Offset: off, Whence: whence}
	}, &r)
	return r.Offset, err
}

// CopyRange copies up to length bytes of file src at srcOff into file dst
// at dstOff inside the server (SMB copy-chunk, copy_file_range): the data
// does not cross the wire. It returns the bytes copied: fewer at the end
// of src (0 at or past it), and at most 64 MiB per call (call again for
// the rest). Overlapping ranges of one file are EINVAL.
func (m *Mount) CopyRange(ctx context.Context, src, srcOff, dst, dstOff, length uint64) (uint64, error) {
	var r wire.CopyRangeResult
	err := m.call(ctx, wire.MethodCopyRange, func(id uint64) any {
		return wire.CopyRangeParams{MountID: id, SrcInode: src, SrcOffset: srcOff, DstInode: dst, DstOffset: dstOff, Length: length}
	}, &r)
	return r.Size, err
}
