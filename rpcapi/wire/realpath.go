package wire

// MethodRealpath resolves a path following every symlink.
const MethodRealpath = "realpath"

// GetStatPathParams are the params of get_stat_path: Follow (optional,
// false if left out) follows a final symlink (stat rather than lstat).
type GetStatPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Follow  bool   `json:"follow"`
}

// RealpathResult is the result of realpath: the canonical path and the
// inode it names.
type RealpathResult struct {
	Path  string `json:"path"`
	Inode uint64 `json:"inode"`
}
