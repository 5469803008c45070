package wire

// Byte-range and flock locks (PROTOCOL.md section 4, "Locks").
const (
	MethodLock       = "lock"
	MethodFlock      = "flock"
	MethodLockCancel = "lock_cancel"
)

// LockParams.Cmd values (fcntl(2) F_GETLK, F_SETLK, F_SETLKW).
const (
	LockGetLk  = "getlk"
	LockSetLk  = "setlk"
	LockSetLkW = "setlkw"
)

// LockParams.Type and LockResult.Type values.
const (
	LockRead   = "read"
	LockWrite  = "write"
	LockUnlock = "unlock"
)

// FlockParams.Op values (flock(2) LOCK_SH, LOCK_EX, LOCK_UN).
const (
	FlockShared    = "shared"
	FlockExclusive = "exclusive"
	FlockUnlock    = "unlock"
)

// Error reasons of the lock calls (ErrorData.Reason).
const (
	// ReasonGrace: EAGAIN for a lock asked without reclaim while the
	// server waits for its clients to reclaim theirs after a restart;
	// the call did not run and is sent again after a delay.
	ReasonGrace = "grace"
	// ReasonNoGrace: ENOLCK for a reclaim after the grace period: the
	// lock was lost.
	ReasonNoGrace = "no_grace"
)

// MaxLockOwner is the longest owner string, in bytes.
const MaxLockOwner = 64

// LockParams are the params of lock.
type LockParams struct {
	MountID uint64 `json:"mount_id"`
	Fh      uint64 `json:"fh"`
	Cmd     string `json:"cmd"`
	Type    string `json:"type"`
	Start   int64  `json:"start"`
	// Len is the length; 0 runs to the end of the file.
	Len   int64  `json:"len"`
	Owner string `json:"owner"`
	// Reclaim re-takes a lock held before a daemon restart (optional).
	Reclaim bool `json:"reclaim"`
}

// LockResult is the result of lock: empty for setlk and setlkw; for getlk
// the conflicting lock, or Type "unlock" alone when nothing conflicts.
type LockResult struct {
	Type  string  `json:"type,omitempty"`
	Start *int64  `json:"start,omitempty"`
	Len   *int64  `json:"len,omitempty"`
	Owner *string `json:"owner,omitempty"`
}

// FlockParams are the params of flock.
type FlockParams struct {
	MountID uint64 `json:"mount_id"`
	Fh      uint64 `json:"fh"`
	Op      string `json:"op"`
	// NonBlock fails with EAGAIN rather than waiting (optional).
	NonBlock bool `json:"nonblock"`
	// Reclaim re-takes a lock held before a daemon restart (optional).
	Reclaim bool `json:"reclaim"`
}

// LockCancelParams are the params of lock_cancel.
type LockCancelParams struct {
	MountID uint64 `json:"mount_id"`
	Fh      uint64 `json:"fh"`
	// Owner is the owner whose waits end; "" for flock waits.
	Owner string `json:"owner"`
}

// LockCancelResult is the result of lock_cancel.
type LockCancelResult struct {
	// Cancelled is how many waits ended.
	Cancelled int `json:"cancelled"`
}
