package inode

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Cookies 1 and 2 are "." and ".."; entries get cookies from firstCookie on.
const (
	cookieDot    = 1
	cookieDotDot = 2
	firstCookie  = 3
)

// mknod creates an inode of the given type as name in dir: the shared body
// of Create, Mkdir and Symlink. As in Linux, c needs search permission on
// dir to look name up (EACCES), an existing name is EEXIST, and only then
// is write permission on dir checked (EACCES). The owner and group come
// from newOwner (setgid directories).
func (fs *FS) mknod(ctx context.Context, c Caller, dir Ino, name string, mode uint32, target string) (Attr, error) {
	if err := checkNewName(name); err != nil {
		return Attr{}, err
	}
	return optimistic1(ctx, fs, func(ctx context.Context) (Attr, error) {
		return fs.mknodOnce(ctx, c, dir, name, mode, target)
	})
}

// mknodOnce is one attempt of mknod. On a shared volume it holds ns only
// shared, and dir's stripe: every key it reads or writes that another
// call could change is compared by its commit (the directory's record
// and the name) or new (the inode), so two creates of this gateway need
// no more exclusion than two creates of different gateways; the stripe
// only orders the creates of this gateway in one directory, which would
// otherwise conflict with each other on the directory's record. Calls
// that remove or move entries still hold ns exclusively (they may read
// and change several directories). On its first attempt it assumes the
// name absent without reading it (vfsbackend.SharedEngine's
// AssumeAbsent): the commit, or the validation of a call that fails,
// then fails if the name exists, and the next attempt reads it.
func (fs *FS) mknodOnce(ctx context.Context, c Caller, dir Ino, name string, mode uint32, target string) (Attr, error) {
	if fs.shared != nil {
		fs.ns.RLock()
		defer fs.ns.RUnlock()
		st := &fs.stripe[dir%stripes]
		st.Lock()
		defer st.Unlock()
	} else {
		fs.ns.Lock()
		defer fs.ns.Unlock()
	}
	t := fs.newTxn()
	d, err := t.searchDir(ctx, c, dir)
	if err != nil {
		return Attr{}, err
	}
	if fs.shared == nil || !fs.shared.AssumeAbsent(ctx, entryKey(dir, name)) {
		if _, err := fs.lookupEntry(ctx, dir, name); err == nil {
			return Attr{}, fmt.Errorf("create %d/%q: %w", dir, name, syscall.EEXIST)
		} else if !errors.Is(err, syscall.ENOENT) {
			return Attr{}, err
		}
	}
	if err := c.mayCreate(&d.Attr); err != nil {
		return Attr{}, err
	}
	uid, gid, mode := c.newOwner(&d.Attr, mode)
	now := fs.now()
	ino, err := t.newInode(ctx)
	if err != nil {
		return Attr{}, err
	}
	r := &record{Attr: Attr{
		Ino: ino, Mode: mode, Nlink: 1, UID: uid, GID: gid,
		Atime: now, Mtime: now, Ctime: now, Crtime: now,
	}}
	switch mode & ModeType {
	case ModeDir:
		r.Nlink = 2
		r.Parent = dir
		r.NextCookie = firstCookie
		d.Nlink++
	case ModeSymlink:
		r.Size = uint64(len(target))
		t.batch.Put(symlinkKey(r.Ino), []byte(target))
	}
	t.put(r)
	t.addEntry(d, name, r.Ino, r.DirType())
	t.touchDir(d, now)
	if err := t.commit(ctx); err != nil {
		return Attr{}, fmt.Errorf("create %d/%q: %w", dir, name, err)
	}
	return r.Attr, nil
}

// Create makes a regular file name in dir, owned by the caller, with the
// permission bits of mode (no umask: that is the client's). It is
// exclusive: EEXIST if name exists. c needs search and write permission
// on dir (see mknod).
func (fs *FS) Create(ctx context.Context, c Caller, dir Ino, name string, mode uint32) (Attr, error) {
	return fs.mknod(ctx, c, dir, name, ModeRegular|mode&ModePerm, "")
}

// Mkdir makes a directory name in dir, owned by the caller (EEXIST if name
// exists). c needs search and write permission on dir (see mknod).
func (fs *FS) Mkdir(ctx context.Context, c Caller, dir Ino, name string, mode uint32) (Attr, error) {
	return fs.mknod(ctx, c, dir, name, ModeDir|mode&ModePerm, "")
}

// Symlink makes a symbolic link name in dir pointing at target, with mode
// 0777. The target is stored as given (1..4096 bytes, no NUL); it is only
// interpreted when a path resolution follows it. c needs search and write
// permission on dir (see mknod).
func (fs *FS) Symlink(ctx context.Context, c Caller, dir Ino, name, target string) (Attr, error) {
	switch {
	case target == "":
		return Attr{}, fmt.Errorf("symlink %q: empty target: %w", name, syscall.ENOENT)
	case len(target) > MaxSymlinkLen:
		return Attr{}, fmt.Errorf("symlink target of %d bytes: %w", len(target), syscall.ENAMETOOLONG)
	}
	if _, err := splitPath(target, false); err != nil {
		return Attr{}, err
	}
	return fs.mknod(ctx, c, dir, name, ModeSymlink|0o777, target)
}

// ReadSymlink returns a symlink's target; EINVAL if ino is not a symlink.
// A symlink's own mode is never checked, so it needs no permission.
func (fs *FS) ReadSymlink(ctx context.Context, ino Ino) (string, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	return fs.readSymlink(ctx, ino)
}

func (fs *FS) readSymlink(ctx context.Context, ino Ino) (string, error) {
	r, err := fs.get(ctx, ino)
	if err != nil {
		return "", err
	}
	if r.Mode&ModeType != ModeSymlink {
		return "", fmt.Errorf("inode %d is not a symlink: %w", ino, syscall.EINVAL)
	}
	v, err := fs.be.Get(ctx, symlinkKey(ino))
	if err != nil {
		return "", fmt.Errorf("symlink %d: target missing: %v: %w", ino, err, syscall.EIO)
	}
	return string(v), nil
}

// Link adds name in dir as a new link to target. Linking a directory is
// EPERM; an existing name is EEXIST. c needs search and write permission
// on dir, checked as for Create; target itself needs none (the kernel's
// default, without fs.protected_hardlinks).
func (fs *FS) Link(ctx context.Context, c Caller, dir Ino, name string, target Ino) error {
	if err := checkNewName(name); err != nil {
		return err
	}
	return fs.optimistic(ctx, func(ctx context.Context) error { return fs.linkOnce(ctx, c, dir, name, target) })
}

func (fs *FS) linkOnce(ctx context.Context, c Caller, dir Ino, name string, target Ino) error {
	fs.ns.Lock()
	defer fs.ns.Unlock()
	t := fs.newTxn()
	d, err := t.searchDir(ctx, c, dir)
	if err != nil {
		return err
	}
	r, err := t.get(ctx, target)
	if err != nil {
		return err
	}
	if r.IsDir() {
		return fmt.Errorf("link to directory %d: %w", target, syscall.EPERM)
	}
	if r.Nlink == 0 {
		return fmt.Errorf("link to unlinked inode %d: %w", target, syscall.ENOENT)
	}
	if _, err := fs.lookupEntry(ctx, dir, name); err == nil {
		return fmt.Errorf("link %d/%q: %w", dir, name, syscall.EEXIST)
	} else if !errors.Is(err, syscall.ENOENT) {
		return err
	}
	if err := c.mayCreate(&d.Attr); err != nil {
		return err
	}
	now := fs.now()
	r.Nlink++
	r.Ctime = now
	t.put(r)
	t.addEntry(d, name, r.Ino, r.DirType())
	t.touchDir(d, now)
	return t.commit(ctx)
}

// Unlink removes the non-directory name from dir (EISDIR for a
// directory). The inode and its data go when its last link does. c needs
// search and write permission on dir, and in a sticky directory must own
// the file or the directory, or be root (see remove).
func (fs *FS) Unlink(ctx context.Context, c Caller, dir Ino, name string) error {
	return fs.remove(ctx, c, dir, name, false)
}

// Rmdir removes the empty directory name from dir (ENOTDIR for a
// non-directory, ENOTEMPTY for a directory with entries). Permissions as
// for Unlink.
func (fs *FS) Rmdir(ctx context.Context, c Caller, dir Ino, name string) error {
	return fs.remove(ctx, c, dir, name, true)
}

// remove is Unlink and Rmdir. The checks come in Linux's order: search
// permission on dir (EACCES), the name (ENOENT), write permission on dir
// (EACCES), the sticky rule (EPERM), the type (ENOTDIR, EISDIR), then
// ENOTEMPTY.
func (fs *FS) remove(ctx context.Context, c Caller, dir Ino, name string, wantDir bool) error {
	if err := checkNewName(name); err != nil {
		if name == ".." && wantDir {
			return fmt.Errorf("rmdir %q: %w", name, syscall.ENOTEMPTY)
		}
		return err
	}
	return fs.optimistic(ctx, func(ctx context.Context) error { return fs.removeOnce(ctx, c, dir, name, wantDir) })
}

func (fs *FS) removeOnce(ctx context.Context, c Caller, dir Ino, name string, wantDir bool) error {
	fs.ns.Lock()
	defer fs.ns.Unlock()
	t := fs.newTxn()
	d, err := t.searchDir(ctx, c, dir)
	if err != nil {
		return err
	}
	e, err := fs.lookupEntry(ctx, dir, name)
	if err != nil {
		return err
	}
	r, err := t.get(ctx, e.Ino)
	if err != nil {
		return err
	}
	if err := c.mayDelete(&d.Attr, &r.Attr); err != nil {
		return err
	}
	switch {
	case wantDir && !r.IsDir():
		return errNotDir(r.Ino)
	case !wantDir && r.IsDir():
		return errIsDir(r.Ino)
	case wantDir:
		if err := fs.checkEmpty(ctx, r.Ino); err != nil {
			return err
		}
		d.Nlink--
	}
	now := fs.now()
	t.removeEntry(d, name, e)
	t.touchDir(d, now)
	if err := t.dropLink(ctx, r, now); err != nil {
		return err
	}
	return t.commit(ctx)
}

// checkEmpty returns ENOTEMPTY if directory dir has any entry.
func (fs *FS) checkEmpty(ctx context.Context, dir Ino) error {
	empty := true
	if err := fs.be.Scan(ctx, inoKey(pfxCookie, dir), nil, func(_, _ []byte) bool {
		empty = false
		return false
	}); err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("directory %d: %w", dir, syscall.ENOTEMPTY)
	}
	return nil
}

// Rename moves srcName in srcDir to dstName in dstDir, as rename(2): an
// existing file at the destination is replaced atomically, a directory may
// replace an empty directory (ENOTEMPTY otherwise), a directory cannot
// replace a file (ENOTDIR) nor a file a directory (EISDIR), and a directory
// cannot move into its own subtree (EINVAL). Renaming an entry onto itself
// or onto another link of the same inode succeeds and changes nothing.
//
// Permissions, checked in Linux's order: search on both directories
// (EACCES); then, once the source was found and the subtree checked,
// removing the source from srcDir as Unlink does (write on srcDir, the
// sticky rule); adding to dstDir (write), or, over an existing entry,
// removing that entry as Unlink does; and a directory that moves to
// another parent needs write permission on itself, for its "..".
func (fs *FS) Rename(ctx context.Context, c Caller, srcDir Ino, srcName string, dstDir Ino, dstName string) error {
	if err := checkNewName(srcName); err != nil {
		return err
	}
	if err := checkNewName(dstName); err != nil {
		return err
	}
	return fs.optimistic(ctx, func(ctx context.Context) error {
		return fs.renameOnce(ctx, c, srcDir, srcName, dstDir, dstName)
	})
}

func (fs *FS) renameOnce(ctx context.Context, c Caller, srcDir Ino, srcName string, dstDir Ino, dstName string) error {
	fs.ns.Lock()
	defer fs.ns.Unlock()
	t := fs.newTxn()
	sd, err := t.searchDir(ctx, c, srcDir)
	if err != nil {
		return err
	}
	dd, err := t.searchDir(ctx, c, dstDir)
	if err != nil {
		return err
	}
	se, err := fs.lookupEntry(ctx, srcDir, srcName)
	if err != nil {
		return err
	}
	src, err := t.get(ctx, se.Ino)
	if err != nil {
		return err
	}
	if src.IsDir() && srcDir != dstDir {
		// The destination directory must not be src or below it.
		for p := dstDir; ; {
			if p == src.Ino {
				return fmt.Errorf("rename directory %d into its own subtree: %w", src.Ino, syscall.EINVAL)
			}
			if p == RootIno {
				break
			}
			pr, err := t.getDir(ctx, p)
			if err != nil {
				return err
			}
			p = pr.Parent
		}
	}
	de, err := fs.lookupEntry(ctx, dstDir, dstName)
	dstExists := err == nil
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	if dstExists && de.Ino == se.Ino {
		return nil // same inode: POSIX says do nothing
	}
	if err := c.mayDelete(&sd.Attr, &src.Attr); err != nil {
		return err
	}
	var dst *record
	if dstExists {
		if dst, err = t.get(ctx, de.Ino); err != nil {
			return err
		}
		if err := c.mayDelete(&dd.Attr, &dst.Attr); err != nil {
			return err
		}
		switch {
		case src.IsDir() && !dst.IsDir():
			return errNotDir(dst.Ino)
		case !src.IsDir() && dst.IsDir():
			return errIsDir(dst.Ino)
		}
	} else if err := c.mayCreate(&dd.Attr); err != nil {
		return err
	}
	if src.IsDir() && srcDir != dstDir {
		if err := c.may(&src.Attr, MayWrite); err != nil {
			return err
		}
	}
	now := fs.now()
	if dstExists {
		if dst.IsDir() {
			if err := fs.checkEmpty(ctx, dst.Ino); err != nil {
				return err
			}
			dd.Nlink--
		}
		t.removeEntry(dd, dstName, de)
		if err := t.dropLink(ctx, dst, now); err != nil {
			return err
		}
	}
	t.removeEntry(sd, srcName, se)
	t.addEntry(dd, dstName, src.Ino, src.DirType())
	if src.IsDir() && srcDir != dstDir {
		sd.Nlink--
		dd.Nlink++
		src.Parent = dstDir
	}
	src.Ctime = now
	t.put(src)
	t.touchDir(sd, now)
	t.touchDir(dd, now)
	return t.commit(ctx)
}
