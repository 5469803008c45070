// Package wire holds the proxyfs protocol's types: JSON-RPC method names,
// request and result structs, the error payload, and the binary data
// channel's frame codec. PROTOCOL.md at the top of the repository is the
// prose version; this package and that document must agree.
//
// Both the server (package rpcapi) and the Go client (package
// rpcapi/client) use these types, so the two cannot drift apart.
package wire

// Version is the protocol version spoken by this package.
const Version = 1

// Method names, one per JSON-RPC method.
const (
	MethodPing            = "ping"
	MethodMount           = "mount"
	MethodUnmount         = "unmount"
	MethodLookup          = "lookup"
	MethodLookupPath      = "lookup_path"
	MethodGetStat         = "get_stat"
	MethodGetStatPath     = "get_stat_path"
	MethodType            = "type"
	MethodCreate          = "create"
	MethodCreatePath      = "create_path"
	MethodMkdir           = "mkdir"
	MethodMkdirPath       = "mkdir_path"
	MethodSymlink         = "symlink"
	MethodSymlinkPath     = "symlink_path"
	MethodReadSymlink     = "read_symlink"
	MethodReadSymlinkPath = "read_symlink_path"
	MethodLink            = "link"
	MethodLinkPath        = "link_path"
	MethodUnlink          = "unlink"
	MethodUnlinkPath      = "unlink_path"
	MethodRmdir           = "rmdir"
	MethodRmdirPath       = "rmdir_path"
	MethodRename          = "rename"
	MethodRenamePath      = "rename_path"
	MethodChmod           = "chmod"
	MethodChmodPath       = "chmod_path"
	MethodChown           = "chown"
	MethodChownPath       = "chown_path"
	MethodResize          = "resize"
	MethodResizePath      = "resize_path"
	MethodSettime         = "settime"
	MethodSettimePath     = "settime_path"
	MethodSetattr         = "setattr"
	MethodSetattrPath     = "setattr_path"
	MethodFlush           = "flush"
	MethodRead            = "read"
	MethodWrite           = "write"
	MethodReaddir         = "readdir"
	MethodReaddirPlus     = "readdir_plus"
	MethodStatvfs         = "statvfs"
	MethodGetXattr        = "get_xattr"
	MethodGetXattrPath    = "get_xattr_path"
	MethodSetXattr        = "set_xattr"
	MethodSetXattrPath    = "set_xattr_path"
	MethodListXattr       = "list_xattr"
	MethodListXattrPath   = "list_xattr_path"
	MethodRemoveXattr     = "remove_xattr"
	MethodRemoveXattrPath = "remove_xattr_path"
)

// MountReadOnly is bit 0 of MountParams.Options.
const MountReadOnly = 1

// Setattr mask bits (SetattrParams.Mask).
const (
	SetSize   = 1 << 0
	SetMode   = 1 << 1
	SetUID    = 1 << 2
	SetGID    = 1 << 3
	SetAtime  = 1 << 4
	SetMtime  = 1 << 5
	SetCrtime = 1 << 6
	// SetAtimeNow and SetMtimeNow set atime or mtime to the server's
	// current time; they carry no field. Both together are what a caller
	// with write permission but not the owner may set (utimensat with
	// UTIME_NOW).
	SetAtimeNow = 1 << 7
	SetMtimeNow = 1 << 8
)

// Xattr flags (SetXattrParams.Flags).
const (
	XattrCreate  = 1
	XattrReplace = 2
)

// ReasonBadMount is ErrorData.Reason for a bad, stale or unmounted mount id.
const ReasonBadMount = "bad_mount"

// ReasonBusy is ErrorData.Reason for the EAGAIN of a request over its
// connection's in-flight limit (the request did not run), so that it is
// not taken for the EAGAIN of a lock conflict.
const ReasonBusy = "busy"

// ErrorData is the "data" member of every JSON-RPC error reply.
type ErrorData struct {
	Errno  int    `json:"errno"`
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
}

// Timespec is seconds and nanoseconds since the Unix epoch.
type Timespec struct {
	Sec  int64 `json:"sec"`
	Nsec int64 `json:"nsec"`
}

// Stat is an inode's attributes (proxyfs_stat_t).
type Stat struct {
	Ino    uint64   `json:"ino"`
	Mode   uint32   `json:"mode"`
	Nlink  uint64   `json:"nlink"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Size   uint64   `json:"size"`
	Dev    uint64   `json:"dev"`
	Atime  Timespec `json:"atime"`
	Mtime  Timespec `json:"mtime"`
	Ctime  Timespec `json:"ctime"`
	Crtime Timespec `json:"crtime"`
	// Blocks is st_blocks: 512-byte blocks allocated to the data (fewer
	// than the size for a sparse file). Blksize is st_blksize.
	Blocks  uint64 `json:"blocks"`
	Blksize uint64 `json:"blksize"`
}

// Empty is the result of calls that return nothing.
type Empty struct{}

// PingResult is the result of ping.
type PingResult struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
}

// MountParams are the params of mount.
type MountParams struct {
	Volume  string `json:"volume"`
	Options uint64 `json:"options"`
	User    string `json:"user"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	// Groups are the supplementary groups (optional; at most
	// MaxMountGroups).
	Groups []uint32 `json:"groups,omitempty"`
	// Client names the client instance (optional, at most MaxClientID
	// bytes): a random string a client library picks once and sends with
	// every mount it makes, on any gateway. On a volume that several
	// gateways share, a lock of the same client and owner left on another
	// gateway (one the client moved away from) does not block it, so that
	// it can reclaim its locks on the gateway it moved to (PROTOCOL.md,
	// "Failover").
	Client string `json:"client,omitempty"`
}

// MaxClientID is the longest MountParams.Client, in bytes.
const MaxClientID = 64

// MaxMountGroups is the most supplementary groups a mount may carry.
const MaxMountGroups = 32

// MountResult is the result of mount.
type MountResult struct {
	MountID     uint64 `json:"mount_id"`
	RootInode   uint64 `json:"root_inode"`
	MaxIOSize   uint32 `json:"max_io_size"`
	MaxInflight uint32 `json:"max_inflight"`
	// UID and GID are the ids the mount acts as, which its new inodes get
	// (outside setgid directories): the mount's own, or the volume's
	// anonymous ids for a root that root_squash squashed. Absent (nil)
	// from servers older than permissions.
	UID *uint32 `json:"uid,omitempty"`
	GID *uint32 `json:"gid,omitempty"`
	// ReadOnly is true for a read-only mount: asked for, or forced on a
	// principal with read-only access to the volume (users_ro,
	// groups_ro).
	ReadOnly bool `json:"read_only,omitempty"`
}

// MountOnly is the params of calls that take only a mount id (unmount,
// statvfs).
type MountOnly struct {
	MountID uint64 `json:"mount_id"`
}

// InodeParams names an inode (get_stat, type, read_symlink, flush,
// list_xattr).
type InodeParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
}

// PathParams names a path (lookup_path, get_stat_path, read_symlink_path,
// unlink_path, rmdir_path, list_xattr_path).
type PathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
}

// EntryParams names an entry in a directory (lookup, unlink, rmdir).
type EntryParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Name    string `json:"name"`
}

// InodeResult is the result of lookup and lookup_path.
type InodeResult struct {
	Inode uint64 `json:"inode"`
}

// StatResult is the result of get_stat, get_stat_path, setattr and
// setattr_path.
type StatResult struct {
	Stat Stat `json:"stat"`
}

// TypeResult is the result of type.
type TypeResult struct {
	Type uint16 `json:"type"`
}

// CreateParams are the params of create and mkdir.
type CreateParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Name    string `json:"name"`
	Mode    uint32 `json:"mode"`
	// Open, for create only (optional): also open the new file with this
	// access mode (OpenReadOnly, ...), as open(2) with O_CREAT|O_EXCL; the
	// result then has the handle (NewInodeResult.Fh).
	Open *uint32 `json:"open,omitempty"`
}

// CreatePathParams are the params of create_path and mkdir_path.
type CreatePathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Mode    uint32 `json:"mode"`
}

// NewInodeResult is the result of create, mkdir, symlink and their path
// forms.
type NewInodeResult struct {
	Inode uint64 `json:"inode"`
	Stat  Stat   `json:"stat"`
	// Fh is the handle of a create with "open" (absent otherwise).
	Fh uint64 `json:"fh,omitempty"`
}

// SymlinkParams are the params of symlink.
type SymlinkParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Name    string `json:"name"`
	Target  string `json:"target"`
}

// SymlinkPathParams are the params of symlink_path.
type SymlinkPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Target  string `json:"target"`
}

// ReadSymlinkResult is the result of read_symlink and read_symlink_path.
type ReadSymlinkResult struct {
	Target string `json:"target"`
}

// LinkParams are the params of link: a new entry name in directory Inode
// for the existing inode TargetInode.
type LinkParams struct {
	MountID     uint64 `json:"mount_id"`
	Inode       uint64 `json:"inode"`
	Name        string `json:"name"`
	TargetInode uint64 `json:"target_inode"`
}

// TwoPathParams are the params of link_path (SrcPath exists, DstPath is the
// new link) and rename_path.
type TwoPathParams struct {
	MountID uint64 `json:"mount_id"`
	SrcPath string `json:"src_path"`
	DstPath string `json:"dst_path"`
}

// RenameParams are the params of rename.
type RenameParams struct {
	MountID  uint64 `json:"mount_id"`
	SrcInode uint64 `json:"src_inode"`
	SrcName  string `json:"src_name"`
	DstInode uint64 `json:"dst_inode"`
	DstName  string `json:"dst_name"`
}

// ChmodParams are the params of chmod.
type ChmodParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Mode    uint32 `json:"mode"`
}

// ChmodPathParams are the params of chmod_path.
type ChmodPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Mode    uint32 `json:"mode"`
}

// ChownParams are the params of chown; -1 leaves an id unchanged.
type ChownParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	UID     int64  `json:"uid"`
	GID     int64  `json:"gid"`
}

// ChownPathParams are the params of chown_path.
type ChownPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	UID     int64  `json:"uid"`
	GID     int64  `json:"gid"`
}

// ResizeParams are the params of resize.
type ResizeParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Size    uint64 `json:"size"`
	// Fh is an open handle of the inode (optional): see FhMember.
	Fh uint64 `json:"fh,omitempty"`
}

// ResizePathParams are the params of resize_path.
type ResizePathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Size    uint64 `json:"size"`
}

// SettimeParams are the params of settime; a nil time is left unchanged.
type SettimeParams struct {
	MountID uint64    `json:"mount_id"`
	Inode   uint64    `json:"inode"`
	Atime   *Timespec `json:"atime"`
	Mtime   *Timespec `json:"mtime"`
}

// SettimePathParams are the params of settime_path.
type SettimePathParams struct {
	MountID uint64    `json:"mount_id"`
	Path    string    `json:"path"`
	Atime   *Timespec `json:"atime"`
	Mtime   *Timespec `json:"mtime"`
}

// Attrs is the settable part of setattr as a program gives it: Mask
// selects the fields to change and the others are ignored. It is not sent
// as it is: Fields gives its wire form.
type Attrs struct {
	Mask   uint32    `json:"mask"`
	Size   uint64    `json:"size,omitempty"`
	Mode   uint32    `json:"mode,omitempty"`
	UID    uint32    `json:"uid,omitempty"`
	GID    uint32    `json:"gid,omitempty"`
	Atime  *Timespec `json:"atime,omitempty"`
	Mtime  *Timespec `json:"mtime,omitempty"`
	Crtime *Timespec `json:"crtime,omitempty"`
}

// SetattrFields are the attribute members of setattr and setattr_path as
// they travel: the mask, and a member for each field the mask selects (a
// selected field that is missing or null is EINVAL; the others may be
// left out and are ignored). A nil pointer is a missing member.
type SetattrFields struct {
	Mask   uint32    `json:"mask"`
	Size   *uint64   `json:"size,omitempty"`
	Mode   *uint32   `json:"mode,omitempty"`
	UID    *uint32   `json:"uid,omitempty"`
	GID    *uint32   `json:"gid,omitempty"`
	Atime  *Timespec `json:"atime,omitempty"`
	Mtime  *Timespec `json:"mtime,omitempty"`
	Crtime *Timespec `json:"crtime,omitempty"`
}

// Fields returns a in its wire form: every field a.Mask selects, zeros
// included, and no other.
func (a Attrs) Fields() SetattrFields {
	f := SetattrFields{Mask: a.Mask}
	if a.Mask&SetSize != 0 {
		f.Size = &a.Size
	}
	if a.Mask&SetMode != 0 {
		f.Mode = &a.Mode
	}
	if a.Mask&SetUID != 0 {
		f.UID = &a.UID
	}
	if a.Mask&SetGID != 0 {
		f.GID = &a.GID
	}
	if a.Mask&SetAtime != 0 {
		f.Atime = a.Atime
	}
	if a.Mask&SetMtime != 0 {
		f.Mtime = a.Mtime
	}
	if a.Mask&SetCrtime != 0 {
		f.Crtime = a.Crtime
	}
	return f
}

// SetattrParams are the params of setattr.
type SetattrParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	SetattrFields
	// Fh is an open handle of the inode (optional), for a change of the
	// size only (ftruncate): see FhMember.
	Fh uint64 `json:"fh,omitempty"`
}

// SetattrPathParams are the params of setattr_path.
type SetattrPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	SetattrFields
}

// ReadParams are the params of read.
type ReadParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Offset  uint64 `json:"offset"`
	Length  uint64 `json:"length"`
	// Fh is an open handle of the inode (optional): see FhMember.
	Fh uint64 `json:"fh,omitempty"`
}

// ReadResult is the result of read. encoding/json carries []byte as base64.
type ReadResult struct {
	Data []byte `json:"data"`
}

// WriteParams are the params of write.
type WriteParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Offset  uint64 `json:"offset"`
	Data    []byte `json:"data"`
	// Fh is an open handle of the inode (optional): see FhMember.
	Fh uint64 `json:"fh,omitempty"`
}

// WriteResult is the result of write.
type WriteResult struct {
	Size uint64 `json:"size"`
}

// ReaddirParams are the params of readdir and readdir_plus.
type ReaddirParams struct {
	MountID    uint64 `json:"mount_id"`
	Inode      uint64 `json:"inode"`
	PrevCookie int64  `json:"prev_cookie"`
	MaxEntries uint32 `json:"max_entries"`
}

// DirEntry is one entry of a readdir result; Stat is set by readdir_plus
// only.
type DirEntry struct {
	Name   string `json:"name"`
	Inode  uint64 `json:"inode"`
	Type   uint8  `json:"type"`
	Cookie int64  `json:"cookie"`
	Stat   *Stat  `json:"stat,omitempty"`
	// Xattr is set by readdir_plus with "xattrs" (xattrdir.go).
	Xattr *EntryXattrs `json:"xattr,omitempty"`
}

// ReaddirResult is the result of readdir and readdir_plus.
type ReaddirResult struct {
	Entries []DirEntry `json:"entries"`
	EOF     bool       `json:"eof"`
}

// StatvfsResult is the result of statvfs (struct statvfs).
type StatvfsResult struct {
	Bsize   uint64 `json:"bsize"`
	Frsize  uint64 `json:"frsize"`
	Blocks  uint64 `json:"blocks"`
	Bfree   uint64 `json:"bfree"`
	Bavail  uint64 `json:"bavail"`
	Files   uint64 `json:"files"`
	Ffree   uint64 `json:"ffree"`
	Favail  uint64 `json:"favail"`
	Fsid    uint64 `json:"fsid"`
	Flag    uint64 `json:"flag"`
	Namemax uint64 `json:"namemax"`
}

// XattrParams are the params of get_xattr and remove_xattr.
type XattrParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Name    string `json:"name"`
}

// XattrPathParams are the params of get_xattr_path and remove_xattr_path.
type XattrPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Name    string `json:"name"`
}

// SetXattrParams are the params of set_xattr.
type SetXattrParams struct {
	MountID uint64 `json:"mount_id"`
	Inode   uint64 `json:"inode"`
	Name    string `json:"name"`
	Value   []byte `json:"value"`
	Flags   int    `json:"flags"`
}

// SetXattrPathParams are the params of set_xattr_path.
type SetXattrPathParams struct {
	MountID uint64 `json:"mount_id"`
	Path    string `json:"path"`
	Name    string `json:"name"`
	Value   []byte `json:"value"`
	Flags   int    `json:"flags"`
}

// GetXattrResult is the result of get_xattr and get_xattr_path.
type GetXattrResult struct {
	Value []byte `json:"value"`
}

// ListXattrResult is the result of list_xattr and list_xattr_path.
type ListXattrResult struct {
	Names []string `json:"names"`
}
