package inode

import (
	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Ino is an inode number: 64-bit, stable for the life of the inode, never
// reused in a volume.
type Ino = vfsbackend.Ino

// RootIno is the inode number of every volume's root directory.
const RootIno Ino = 1

// File type bits of Attr.Mode (the S_IFMT values of Linux).
const (
	ModeType    = 0o170000 // S_IFMT
	ModeDir     = 0o040000 // S_IFDIR
	ModeRegular = 0o100000 // S_IFREG
	ModeSymlink = 0o120000 // S_IFLNK
	ModePerm    = 0o7777   // the bits a caller may set
)

// Directory entry types (the DT_* values of <dirent.h>).
const (
	DTDir     = 4
	DTRegular = 8
	DTSymlink = 10
)

// Limits on names and paths.
const (
	MaxNameLen       = 255  // bytes in one name
	MaxPathLen       = 4096 // bytes in a path
	MaxSymlinkLen    = 4096 // bytes in a symlink target
	MaxSymlinkFollow = 40   // symlinks followed in one resolution before ELOOP
	MaxXattrNameLen  = 255
	MaxXattrValueLen = 64 << 10
	MaxFileSize      = 1 << 50 // bytes; offsets beyond it are EFBIG
)

// Xattr flags (Linux setxattr(2)).
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if the attribute does not exist
)

// Timespec is a point in time: seconds and nanoseconds since the Unix epoch.
type Timespec struct {
	Sec  int64
	Nsec int64 // 0..999999999
}

// Attr is what stat reports about an inode.
type Attr struct {
	Ino    Ino
	Mode   uint32 // type bits | permission bits
	Nlink  uint64
	UID    uint32
	GID    uint32
	Size   uint64
	Atime  Timespec
	Mtime  Timespec
	Ctime  Timespec
	Crtime Timespec
}

// DirType returns the DT_* value for the attribute's file type.
func (a Attr) DirType() uint8 {
	switch a.Mode & ModeType {
	case ModeDir:
		return DTDir
	case ModeSymlink:
		return DTSymlink
	default:
		return DTRegular
	}
}

// IsDir reports whether the inode is a directory.
func (a Attr) IsDir() bool { return a.Mode&ModeType == ModeDir }

// Set* are the bits of SetAttr.Mask: which fields of a SetAttr to apply.
const (
	SetSize   = 1 << 0
	SetMode   = 1 << 1
	SetUID    = 1 << 2
	SetGID    = 1 << 3
	SetAtime  = 1 << 4
	SetMtime  = 1 << 5
	SetCrtime = 1 << 6
	// SetAtimeNow and SetMtimeNow set atime or mtime to the server's
	// current time (utimensat's UTIME_NOW): a caller with write permission
	// may set both to now without owning the file. Each excludes its
	// explicit counterpart (EINVAL).
	SetAtimeNow = 1 << 7
	SetMtimeNow = 1 << 8
	SetMaskAll  = SetSize | SetMode | SetUID | SetGID | SetAtime | SetMtime | SetCrtime | SetAtimeNow | SetMtimeNow
)

// SetAttr describes an attribute change. Only the fields whose bit is in
// Mask are applied, all in one atomic step.
type SetAttr struct {
	Mask   uint32
	Size   uint64
	Mode   uint32 // only the ModePerm bits are used
	UID    uint32
	GID    uint32
	Atime  Timespec
	Mtime  Timespec
	Crtime Timespec
}

// DirEntry is one entry returned by ReadDir.
type DirEntry struct {
	Name   string
	Ino    Ino
	Type   uint8 // DT_*
	Cookie int64 // pass as prevCookie to continue after this entry
	Attr   Attr  // filled only by ReadDir with plus=true
}

// StatFS describes a volume for statvfs(3).
type StatFS struct {
	BlockSize   uint64 // f_bsize and f_frsize
	Blocks      uint64 // total, in BlockSize units
	BlocksFree  uint64
	BlocksAvail uint64
	Files       uint64 // inodes in use plus FilesFree
	FilesFree   uint64
	NameMax     uint64
}
