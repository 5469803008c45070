package server

import (
	"context"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// The allocation methods (PROTOCOL.md: fallocate, lseek), added to the
// method table.
func init() {
	methods[wire.MethodFallocate] = handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.FallocateParams) (any, error) {
		return empty(e.fs.Fallocate(ctx, e.caller(), inode.Ino(p.Inode), p.Mode, p.Offset, p.Length))
	})
	methods[wire.MethodLseek] = handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.LseekParams) (any, error) {
		var hole bool
		switch p.Whence {
		case wire.WhenceData:
		case wire.WhenceHole:
			hole = true
		default:
			return nil, errParams("whence %q is not \"data\" or \"hole\"", p.Whence)
		}
		off, err := e.fs.Seek(ctx, e.caller(), inode.Ino(p.Inode), p.Offset, hole)
		if err != nil {
			return nil, err
		}
		return wire.LseekResult{Offset: off}, nil
	})
}

func init() {
	methods[wire.MethodCopyRange] = handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.CopyRangeParams) (any, error) {
		n, err := e.fs.CopyRange(ctx, e.caller(), inode.Ino(p.SrcInode), p.SrcOffset, inode.Ino(p.DstInode), p.DstOffset, p.Length)
		if err != nil {
			return nil, err
		}
		return wire.CopyRangeResult{Size: n}, nil
	})
}

func init() {
	methods[wire.MethodRealpath] = handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.PathParams) (any, error) {
		path, ino, err := e.fs.Realpath(ctx, e.caller(), p.Path)
		if err != nil {
			return nil, err
		}
		return wire.RealpathResult{Path: path, Inode: uint64(ino)}, nil
	})
}
