package inode

import (
	"context"
	"syscall"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"go.uber.org/zap"
)

// Options configures an FS.
type Options struct {
	// Logger receives the FS's logs. Nil means no logs.
	Logger *zap.Logger
	// Now returns the current time; nil means the wall clock. Tests set it.
	Now func() Timespec
}

// FS implements POSIX semantics for one volume on top of a Backend.
type FS struct {
	be vfsbackend.Backend
}

// Open opens the volume stored in be, creating the root directory if the
// store is empty and repairing leftovers of an interrupted run (data
// objects of deleted inodes, data beyond an inode's size).
func Open(ctx context.Context, be vfsbackend.Backend, opts Options) (*FS, error) {
	return &FS{be: be}, nil
}

// Lookup returns the inode number of name in directory dir.
func (fs *FS) Lookup(ctx context.Context, dir Ino, name string) (Ino, error) {
	return 0, syscall.ENOSYS
}

// GetAttr returns ino's attributes.
func (fs *FS) GetAttr(ctx context.Context, ino Ino) (Attr, error) { return Attr{}, syscall.ENOSYS }

// Create makes a regular file name in dir (exclusive: EEXIST if name exists).
func (fs *FS) Create(ctx context.Context, c Caller, dir Ino, name string, mode uint32) (Attr, error) {
	return Attr{}, syscall.ENOSYS
}

// Mkdir makes a directory name in dir.
func (fs *FS) Mkdir(ctx context.Context, c Caller, dir Ino, name string, mode uint32) (Attr, error) {
	return Attr{}, syscall.ENOSYS
}

// Symlink makes a symbolic link name in dir pointing at target.
func (fs *FS) Symlink(ctx context.Context, c Caller, dir Ino, name, target string) (Attr, error) {
	return Attr{}, syscall.ENOSYS
}

// Link adds name in dir as a new link to target.
func (fs *FS) Link(ctx context.Context, dir Ino, name string, target Ino) error { return syscall.ENOSYS }

// Unlink removes the non-directory name from dir.
func (fs *FS) Unlink(ctx context.Context, dir Ino, name string) error { return syscall.ENOSYS }

// Rmdir removes the empty directory name from dir.
func (fs *FS) Rmdir(ctx context.Context, dir Ino, name string) error { return syscall.ENOSYS }

// Rename moves srcName in srcDir to dstName in dstDir, as rename(2).
func (fs *FS) Rename(ctx context.Context, srcDir Ino, srcName string, dstDir Ino, dstName string) error {
	return syscall.ENOSYS
}

// ReadSymlink returns a symlink's target.
func (fs *FS) ReadSymlink(ctx context.Context, ino Ino) (string, error) { return "", syscall.ENOSYS }

// SetAttr applies the fields of sa selected by sa.Mask in one step.
func (fs *FS) SetAttr(ctx context.Context, ino Ino, sa SetAttr) (Attr, error) {
	return Attr{}, syscall.ENOSYS
}

// Read reads into p from ino at off.
func (fs *FS) Read(ctx context.Context, ino Ino, p []byte, off uint64) (int, error) {
	return 0, syscall.ENOSYS
}

// Write writes p into ino at off.
func (fs *FS) Write(ctx context.Context, ino Ino, p []byte, off uint64) error { return syscall.ENOSYS }

// Flush makes ino's data and metadata durable.
func (fs *FS) Flush(ctx context.Context, ino Ino) error { return syscall.ENOSYS }

// ReadDir lists dir after prevCookie.
func (fs *FS) ReadDir(ctx context.Context, dir Ino, prevCookie int64, max int, plus bool) ([]DirEntry, bool, error) {
	return nil, false, syscall.ENOSYS
}

// GetXattr returns the value of ino's extended attribute name.
func (fs *FS) GetXattr(ctx context.Context, ino Ino, name string) ([]byte, error) {
	return nil, syscall.ENOSYS
}

// ListXattr returns the names of ino's extended attributes.
func (fs *FS) ListXattr(ctx context.Context, ino Ino) ([]string, error) { return nil, syscall.ENOSYS }

// SetXattr sets an extended attribute.
func (fs *FS) SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags int) error {
	return syscall.ENOSYS
}

// RemoveXattr removes an extended attribute.
func (fs *FS) RemoveXattr(ctx context.Context, ino Ino, name string) error { return syscall.ENOSYS }

// StatFS reports the volume's space and inode use.
func (fs *FS) StatFS(ctx context.Context) (StatFS, error) { return StatFS{}, syscall.ENOSYS }

// Resolve returns the inode a path names.
func (fs *FS) Resolve(ctx context.Context, path string) (Ino, error) { return 0, syscall.ENOSYS }

// ResolveParent resolves all but the last component of path.
func (fs *FS) ResolveParent(ctx context.Context, path string) (Ino, string, error) {
	return 0, "", syscall.ENOSYS
}

// Check verifies the volume's consistency.
func (fs *FS) Check(ctx context.Context) ([]string, error) { return nil, syscall.ENOSYS }

// Sync makes all committed metadata durable.
func (fs *FS) Sync(ctx context.Context) error { return fs.be.Sync(ctx) }
