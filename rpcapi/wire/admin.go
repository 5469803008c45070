package wire

// Administrative methods: they take no mount (like ping) and describe the
// daemon as a whole, for operators (pfs volumes, pfs df, pfs status).
const (
	MethodVolumes = "volumes"
	MethodStatus  = "status"
)

// VolumeInfo is one volume in the result of volumes.
type VolumeInfo struct {
	Name string `json:"name"`
	// Fsid is the volume's statvfs f_fsid (and stat st_dev).
	Fsid uint64 `json:"fsid"`
	// Space in bytes: the volume's size, the bytes in use, and the bytes
	// available for new data (statvfs f_blocks, f_blocks - f_bfree and
	// f_bavail times f_frsize).
	SizeBytes  uint64 `json:"size_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
	AvailBytes uint64 `json:"avail_bytes"`
	// Inodes: the total (f_files), those in use and those free (f_ffree).
	Inodes     uint64 `json:"inodes"`
	InodesUsed uint64 `json:"inodes_used"`
	InodesFree uint64 `json:"inodes_free"`
	// Mounts is the number of live mounts of the volume (those in their
	// mount_grace included).
	Mounts int `json:"mounts"`
	// Error is set when the volume's usage could not be read; the numbers
	// are then 0.
	Error string `json:"error,omitempty"`
}

// VolumesResult is the result of volumes: every volume, in the order of
// the configuration.
type VolumesResult struct {
	Volumes []VolumeInfo `json:"volumes"`
}

// Volume states in VolumeStatus.State.
const (
	VolumeOK     = "ok"
	VolumeFailed = "failed"
)

// VolumeStatus is one volume in the result of status.
type VolumeStatus struct {
	Name string `json:"name"`
	// State is VolumeOK, or VolumeFailed when the engine reports that its
	// storage is gone (Error says why).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// StatusResult is the result of status.
type StatusResult struct {
	// Version and Server are those of ping.
	Version int    `json:"version"`
	Server  string `json:"server"`
	// UptimeSec is the number of seconds since the daemon started
	// serving.
	UptimeSec uint64 `json:"uptime_sec"`
	// Connections is the number of open connections (JSON-RPC and
	// binary), Mounts the number of live mounts, OpenHandles the number
	// of open file handles (open).
	Connections int `json:"connections"`
	Mounts      int `json:"mounts"`
	OpenHandles int `json:"open_handles"`
	// Volumes is every volume, in the order of the configuration.
	Volumes []VolumeStatus `json:"volumes"`
}
