package wire

// Open file handles (PROTOCOL.md, "Open files and orphans").
const (
	MethodOpen  = "open"
	MethodClose = "close"
)

// Open access modes (OpenParams.Flags, the O_ACCMODE values of Linux);
// every other bit is EINVAL.
const (
	OpenReadOnly  = 0
	OpenWriteOnly = 1
	OpenReadWrite = 2
)

// OpenParams are the params of open.
type OpenParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	// Flags is the access mode (optional, default OpenReadOnly).
	Flags uint32 `json:"flags"`
	// Reclaim reopens a file the client had open before the daemon
	// restarted, which may have no link left (optional, default false).
	Reclaim bool `json:"reclaim"`
}

// OpenResult is the result of open.
type OpenResult struct {
	// Fh is the handle: nonzero, below 2^53, valid with its mount only.
	Fh   uint64 `json:"fh"`
	Stat Stat   `json:"stat"`
}

// CloseParams are the params of close.
type CloseParams struct {
	MountID uint64 `json:"mount_id"`
	Fh      uint64 `json:"fh"`
}

// Calls through an open handle (PROTOCOL.md, "Open files and orphans",
// "I/O through a handle"): read, write, resize, a setattr of the size
// only, and flush may name a handle of their inode, the optional member
// "fh" in JSON-RPC (FhMember) or RequestFlagHandle on the binary channel.
// With a handle, the access mode granted when it was opened decides
// (EBADF for a read through a write-only handle, or a write or truncate
// through a read-only one) and permissions are not checked again; the
// handle must be one of the call's mount and of the call's inode (EBADF).
// Without one, every call is checked against the file's mode as before.
const (
	// FhMember is the name of the optional member that carries a handle.
	FhMember = "fh"
	// RequestFlagHandle, in a binary request's flags, says that an 8-byte
	// handle (u64, little-endian) follows the header and the identity
	// block, if any, before the payload; the header's length still counts
	// the payload only. READ, WRITE and FLUSH take it; any other opcode
	// with it gets EINVAL.
	RequestFlagHandle = 4
	// HandleBlockSize is the size of the handle that follows a header
	// with RequestFlagHandle.
	HandleBlockSize = 8
)

// FlushParams are the params of flush.
type FlushParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	// Fh is an open handle of the inode (optional): see FhMember.
	Fh uint64 `json:"fh,omitempty"`
}

// CreateOpenOffset is the Offset of an OpCreateOpen request.
func CreateOpenOffset(mode, acc uint32) uint64 { return uint64(acc)<<32 | uint64(mode) }
