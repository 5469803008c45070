package client

import (
	"context"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// LookupStat returns the attributes of name in directory dir (its inode
// number is the Stat's Ino) in one request: the binary LOOKUP's reply is
// the entry's stat record. A symlink is not followed (fstatat with
// AT_SYMLINK_NOFOLLOW). Create, Mkdir and Symlink return the new entry's
// Stat the same way.
func (m *Mount) LookupStat(ctx context.Context, dir uint64, name string) (Stat, error) {
	return m.binStat(ctx, wire.OpLookup, dir, name)
}

// statExt returns the request flags of a binary metadata call: the
// opcodes that reply with stat records ask for the extended record, with
// st_blocks and st_blksize.
func statExt(op uint16) uint32 {
	switch op {
	case wire.OpLookup, wire.OpGetStat, wire.OpCreate, wire.OpReaddirPlus, wire.OpLookupCI, wire.OpReaddirPlusXattr:
		return wire.RequestFlagStatExt
	}
	return 0
}

// Realpath returns the canonical path of what path names, following every
// symlink (the last component's too), and its inode; a dangling symlink is
// ENOENT.
func (m *Mount) Realpath(ctx context.Context, path string) (string, uint64, error) {
	var r wire.RealpathResult
	err := m.call(ctx, wire.MethodRealpath, func(id uint64) any {
		return wire.PathParams{MountID: id, Path: path}
	}, &r)
	return r.Path, r.Inode, err
}

// GetStatPathFollow is GetStatPath following a final symlink (stat(2)
// rather than lstat(2)).
func (m *Mount) GetStatPathFollow(ctx context.Context, path string) (Stat, error) {
	var r wire.StatResult
	err := m.call(ctx, wire.MethodGetStatPath, func(id uint64) any {
		return wire.GetStatPathParams{MountID: id, Path: path, Follow: true}
	}, &r)
	return r.Stat, err
}
