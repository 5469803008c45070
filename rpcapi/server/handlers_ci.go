package server

import (
	"context"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

func init() {
	methods[wire.MethodLookupCI] = handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.EntryParams) (any, error) {
		name, a, err := e.fs.LookupCI(ctx, e.caller(), inode.Ino(p.Inode), p.Name)
		if err != nil {
			return nil, err
		}
		return wire.LookupCIResult{Name: name, Inode: uint64(a.Ino), Stat: e.stat(a)}, nil
	})
}

// binLookupCI is the binary LOOKUP_CI: a stat record (136 bytes with
// STAT_EXT in flags), then the real name.
func (e *env) binLookupCI(ctx context.Context, dir inode.Ino, name string, flags uint32) (data, pooled []byte, err error) {
	found, a, err := e.fs.LookupCI(ctx, e.caller(), dir, name)
	if err != nil {
		return nil, nil, err
	}
	st := e.stat(a)
	b := wire.AppendStatRecord(make([]byte, 0, wire.StatExtSize+len(found)), &st, flags)
	return append(b, found...), nil, nil
}
