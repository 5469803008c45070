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
