package inode

import (
	"context"
	"fmt"
	"strings"
	"syscall"
)

// Realpath resolves path as Resolve does, but follows every symlink, the
// last component's too (realpath(3), stat(2) rather than lstat(2)), and
// returns the canonical path of what it names ("/" for the root; no ".",
// "..", symlinks or repeated slashes) and its inode. A dangling symlink
// is ENOENT, a loop ELOOP. c needs search permission on every directory
// a name is looked up in, as for Resolve.
func (fs *FS) Realpath(ctx context.Context, c Caller, path string) (string, Ino, error) {
	comps, err := splitPath(path, false)
	if err != nil {
		return "", 0, err
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	inos := []Ino{RootIno} // the directories from the root to here
	var names []string     // their names (none for the root)
	follows := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		cur := inos[len(inos)-1]
		if _, err := fs.searchDir(ctx, c, cur); err != nil {
			return "", 0, err
		}
		if name == ".." {
			if len(inos) > 1 {
				inos, names = inos[:len(inos)-1], names[:len(names)-1]
			}
			continue
		}
		e, err := fs.lookupEntry(ctx, cur, name)
		if err != nil {
			return "", 0, err
		}
		if e.Type == DTSymlink {
			follows++
			if follows > MaxSymlinkFollow {
				return "", 0, fmt.Errorf("realpath: too many symlinks: %w", syscall.ELOOP)
			}
			target, err := fs.readSymlink(ctx, e.Ino)
			if err != nil {
				return "", 0, err
			}
			tcomps, err := splitPath(target, false)
			if err != nil {
				return "", 0, err
			}
			if target[0] == '/' {
				inos, names = inos[:1], names[:0]
			}
			comps = append(tcomps, comps...)
			if len(comps) > MaxPathLen {
				return "", 0, fmt.Errorf("realpath: path too long after symlinks: %w", syscall.ENAMETOOLONG)
			}
			continue
		}
		inos, names = append(inos, e.Ino), append(names, name)
	}
	ino := inos[len(inos)-1]
	if trailingSlash(path) {
		if _, err := fs.getDir(ctx, ino); err != nil {
			return "", 0, err
		}
	}
	p := "/" + strings.Join(names, "/")
	if len(p) > MaxPathLen {
		return "", 0, fmt.Errorf("realpath: result of %d bytes: %w", len(p), syscall.ENAMETOOLONG)
	}
	return p, ino, nil
}
