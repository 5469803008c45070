package wire

// MethodCopyRange copies a byte range between two files inside the server.
const MethodCopyRange = "copy_range"

// CopyRangeParams are the params of copy_range.
type CopyRangeParams struct {
	MountID   uint64 `json:"mount_id"`
	SrcInode  uint64 `json:"src_inode"`
	SrcOffset uint64 `json:"src_offset"`
	DstInode  uint64 `json:"dst_inode"`
	DstOffset uint64 `json:"dst_offset"`
	Length    uint64 `json:"length"`
}

// CopyRangeResult is the result of copy_range: the bytes copied.
type CopyRangeResult struct {
	Size uint64 `json:"size"`
}
