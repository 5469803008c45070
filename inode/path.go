package inode

import (
	"context"
	"fmt"
	"syscall"
)

// Resolve returns the inode a path names. Paths start at the volume root
// (a leading '/' is optional), "." and empty components are ignored, ".."
// goes to the parent but never above the root, and symlinks in
// intermediate components are followed (absolute targets from the volume
// root, ELOOP after MaxSymlinkFollow). The last component is never
// followed. "" and "/" name the root. c needs search permission on every
// directory it looks a name up in (".." included), as in a path
// resolution of Linux; a symlink's own mode is never checked.
func (fs *FS) Resolve(ctx context.Context, c Caller, path string) (Ino, error) {
	comps, err := splitPath(path, false)
	if err != nil {
		return 0, err
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	// As in POSIX, a trailing slash makes the last component a directory
	// to enter: a symlink there is followed, and anything but a directory
	// is ENOTDIR.
	ino, err := fs.walk(ctx, c, comps, trailingSlash(path))
	if err == nil && trailingSlash(path) {
		if _, err := fs.getDir(ctx, ino); err != nil {
			return 0, err
		}
	}
	return ino, err
}

// trailingSlash reports whether path ends in '/' (after a non-root
// component), which requires the path to name a directory.
func trailingSlash(path string) bool {
	return len(path) > 1 && path[len(path)-1] == '/'
}

// ResolveParent resolves all but the last component of path, as Resolve
// does, and returns the directory it names and the last component. The
// last component may be "." or ".." (the inode calls reject those where
// they cannot be used); a path naming the root has an empty last
// component, which the inode calls reject with EINVAL. c needs search
// permission on the directories walked to reach the parent; the inode
// call then checks what it needs of the parent itself.
func (fs *FS) ResolveParent(ctx context.Context, c Caller, path string) (Ino, string, error) {
	comps, err := splitPath(path, true)
	if err != nil {
		return 0, "", err
	}
	if len(comps) == 0 {
		return RootIno, "", nil
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	dir, err := fs.walk(ctx, c, comps[:len(comps)-1], true)
	if err != nil {
		return 0, "", err
	}
	d, err := fs.getDir(ctx, dir)
	if err != nil {
		return 0, "", err
	}
	last := comps[len(comps)-1]
	if trailingSlash(path) && last != "." && last != ".." && c.search(&d.Attr) == nil {
		// "f/" must name a directory if it names anything. (Without
		// search permission the call on the parent fails anyway.)
		if e, err := fs.lookupEntry(ctx, dir, last); err == nil && e.Type != DTDir {
			return 0, "", fmt.Errorf("%q is not a directory: %w", path, syscall.ENOTDIR)
		}
	}
	return dir, last, nil
}

// walk resolves comps from the root, following symlinks in every
// component but the last, and in the last too when followLast is set (it
// is when comps name the directory that holds an entry). c needs search
// permission on every directory a name is looked up in. Callers hold ns
// shared.
func (fs *FS) walk(ctx context.Context, c Caller, comps []string, followLast bool) (Ino, error) {
	stack := []Ino{RootIno} // the directories from the root to here
	follows := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		cur := stack[len(stack)-1]
		if _, err := fs.searchDir(ctx, c, cur); err != nil {
			return 0, err
		}
		if name == ".." {
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		e, err := fs.lookupEntry(ctx, cur, name)
		if err != nil {
			return 0, err
		}
		if (len(comps) > 0 || followLast) && e.Type == DTSymlink {
			follows++
			if follows > MaxSymlinkFollow {
				return 0, fmt.Errorf("resolve: too many symlinks: %w", syscall.ELOOP)
			}
			target, err := fs.readSymlink(ctx, e.Ino)
			if err != nil {
				return 0, err
			}
			tcomps, err := splitPath(target, false)
			if err != nil {
				return 0, err
			}
			if target[0] == '/' {
				stack = stack[:1]
			}
			comps = append(tcomps, comps...)
			if len(comps) > MaxPathLen {
				return 0, fmt.Errorf("resolve: path too long after symlinks: %w", syscall.ENAMETOOLONG)
			}
			continue
		}
		stack = append(stack, e.Ino)
	}
	return stack[len(stack)-1], nil
}
