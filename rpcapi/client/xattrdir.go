package client

import (
	"context"
	"fmt"
	"math"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// ReadDirPlusXattr is ReadDirPlus with each entry's extended attributes
// (PROTOCOL.md, "Listings with xattrs"): every entry's Xattr holds the
// names of its xattrs and the values of names, as ListXattr and GetXattr
// would answer them (an entry's errno in place of what it may not read).
// It uses the binary channel (READDIR_PLUS_XATTR). A batch may hold fewer
// than max entries when their xattrs are large (eof is then false).
func (m *Mount) ReadDirPlusXattr(ctx context.Context, ino uint64, prevCookie int64, max int, names []string) ([]DirEntry, bool, error) {
	if max < 0 || uint64(max) > math.MaxUint32 {
		return nil, false, &Error{Op: wire.MethodReaddirPlus, Errno: syscall.EINVAL, Msg: fmt.Sprintf("max %d", max)}
	}
	if len(names) > wire.MaxXattrDirNames {
		return nil, false, &Error{Op: wire.MethodReaddirPlus, Errno: syscall.EINVAL, Msg: fmt.Sprintf("%d xattr names (at most %d)", len(names), wire.MaxXattrDirNames)}
	}
	for _, n := range names {
		if n == "" || len(n) > 255 {
			return nil, false, &Error{Op: wire.MethodReaddirPlus, Errno: syscall.EINVAL, Msg: fmt.Sprintf("xattr name of %d bytes", len(n))}
		}
	}
	payload := wire.AppendXattrDirRequest(nil, uint32(max), names)
	data, err := m.binMeta(ctx, wire.OpReaddirPlusXattr, ino, uint64(prevCookie), 0, string(payload), 0)
	if err != nil {
		return nil, false, err
	}
	ents, eof, derr := wire.DecodeReaddirPlusXattr(data, wire.RequestFlagStatExt, names)
	if derr != nil {
		return nil, false, protocolError(wire.MethodReaddirPlus, derr)
	}
	return ents, eof, nil
}
