package wire

// Allocation methods: fallocate and lseek (SEEK_DATA/SEEK_HOLE).
const (
	MethodFallocate = "fallocate"
	MethodLseek     = "lseek"
)

// Fallocate modes (FallocateParams.Mode): Linux's FALLOC_FL_* bits.
const (
	FallocKeepSize  = 0x01
	FallocPunchHole = 0x02
	FallocZeroRange = 0x10
)

// Lseek whences (LseekParams.Whence).
const (
	WhenceData = "data"
	WhenceHole = "hole"
)

// FallocateParams are the params of fallocate.
type FallocateParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Mode    uint32 `json:"mode"`
	Offset  uint64 `json:"offset"`
	Length  uint64 `json:"length"`
}

// LseekParams are the params of lseek.
type LseekParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Offset  uint64 `json:"offset"`
	Whence  string `json:"whence"`
}

// LseekResult is the result of lseek.
type LseekResult struct {
	Offset uint64 `json:"offset"`
}
