package client

import (
	"context"
	"fmt"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// maxNameLen is the longest name a directory entry has (bytes).
const maxNameLen = 255

// LookupCI finds name in directory dir ignoring case, as an SMB gateway
// needs before it creates a file: the entry named exactly name if there is
// one, else the first entry, in byte order of names, whose name matches
// under Unicode simple case folding (PROTOCOL.md, "Case-insensitive
// lookup"). It returns the entry's real name and attributes (st.Ino is
// its inode number), or an error matching syscall.ENOENT when no name
// matches. It is one call on the binary channel, and costs the server
// O(log n) in the size of the directory.
func (m *Mount) LookupCI(ctx context.Context, dir uint64, name string) (realName string, st Stat, err error) {
	data, err := m.binMeta(ctx, wire.OpLookupCI, dir, 0, 0, name, wire.StatExtSize+maxNameLen)
	if err != nil {
		return "", Stat{}, err
	}
	if len(data) <= wire.StatExtSize {
		return "", Stat{}, protocolError(wire.MethodLookupCI, fmt.Errorf("%w: reply of %d bytes", wire.ErrBadFrame, len(data)))
	}
	st, derr := wire.DecodeStatExt(data[:wire.StatExtSize])
	if derr != nil {
		return "", Stat{}, protocolError(wire.MethodLookupCI, derr)
	}
	return string(data[wire.StatExtSize:]), st, nil
}
