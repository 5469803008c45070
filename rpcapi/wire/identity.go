package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Identity is a per-call identity: the user, primary group and
// supplementary groups one call runs as instead of its mount's. Only a
// connection allowed to act as other users (a gateway) may send another
// identity than its own (PROTOCOL.md, "Per-call identity").
type Identity struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// AsMember is the name of the optional params member that carries a
// per-call identity in JSON-RPC: {"as":{"uid":1001,"gid":1001,"groups":[100]}}.
const AsMember = "as"

// Binary per-call identity: a request with RequestFlagIdentity in its
// flags has an identity block between its 48-byte header and its payload:
// uid (u32), gid (u32), ngroups (u16, at most MaxMountGroups), reserved
// (u16, 0), then ngroups u32 group ids; all little-endian. The header's
// length still counts the payload only.
const (
	RequestFlagIdentity = 2
	// IdentityHeadSize is the size of the identity block's fixed part.
	IdentityHeadSize = 12
)

// AppendIdentity appends id's identity block to b. It panics on more
// than MaxMountGroups groups (a caller's bug: check first).
func AppendIdentity(b []byte, id *Identity) []byte {
	if len(id.Groups) > MaxMountGroups {
		panic(fmt.Sprintf("wire: identity with %d groups (at most %d)", len(id.Groups), MaxMountGroups))
	}
	b = binary.LittleEndian.AppendUint32(b, id.UID)
	b = binary.LittleEndian.AppendUint32(b, id.GID)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(id.Groups)))
	b = binary.LittleEndian.AppendUint16(b, 0)
	for _, g := range id.Groups {
		b = binary.LittleEndian.AppendUint32(b, g)
	}
	return b
}

// IdentityBlockSize is the size of id's identity block.
func IdentityBlockSize(id *Identity) int { return IdentityHeadSize + 4*len(id.Groups) }

// ReadIdentity reads an identity block from r. A block with more than
// MaxMountGroups groups or a nonzero reserved field breaks the stream (an
// error wrapping ErrBadFrame).
func ReadIdentity(r io.Reader) (*Identity, error) {
	var head [IdentityHeadSize]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	id := &Identity{UID: binary.LittleEndian.Uint32(head[0:]), GID: binary.LittleEndian.Uint32(head[4:])}
	n := int(binary.LittleEndian.Uint16(head[8:]))
	if n > MaxMountGroups {
		return nil, fmt.Errorf("%w: identity with %d groups (at most %d)", ErrBadFrame, n, MaxMountGroups)
	}
	if rsv := binary.LittleEndian.Uint16(head[10:]); rsv != 0 {
		return nil, fmt.Errorf("%w: identity reserved field %#x", ErrBadFrame, rsv)
	}
	if n > 0 {
		gb := make([]byte, 4*n)
		if _, err := io.ReadFull(r, gb); err != nil {
			return nil, err
		}
		id.Groups = make([]uint32, n)
		for i := range id.Groups {
			id.Groups[i] = binary.LittleEndian.Uint32(gb[4*i:])
		}
	}
	return id, nil
}

// MethodAuth authenticates a connection with a token (PROTOCOL.md,
// "Authentication"); OpAuth is its binary form, the token as payload.
const (
	MethodAuth = "auth"
	OpAuth     = 10
)

// AuthParams is the params of auth.
type AuthParams struct {
	Token string `json:"token"`
}

// AuthResult is the result of auth: who the connection now is.
type AuthResult struct {
	// Name is the token's name in the tokens file.
	Name string `json:"name"`
	// Gateway is true when the connection may act as any identity.
	Gateway bool `json:"gateway"`
	// UID, GID and Groups are the identity the connection may act as
	// (absent for a gateway).
	UID    *uint32  `json:"uid,omitempty"`
	GID    *uint32  `json:"gid,omitempty"`
	Groups []uint32 `json:"groups,omitempty"`
}
