package inode

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
)

// This file is the permission model, in one place: every check that the
// calls of this package make goes through the functions below. The rules
// are Linux's (generic_permission, may_delete, setattr_prepare,
// xattr_permission); the package documentation summarizes them.

// Mode bits beyond the nine permission bits (S_ISUID, S_ISGID, S_ISVTX).
const (
	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
)

// Access is what a call asks of an inode: the bits of access(2).
type Access uint32

// Access bits.
const (
	MayExec  Access = 1 // X_OK: execute a file, search a directory
	MayWrite Access = 2 // W_OK
	MayRead  Access = 4 // R_OK
)

// Caller is the identity a call runs as: new inodes take its UID (and its
// GID unless the directory is setgid), and every permission check is made
// against it. UID 0 is root (every capability, as on Linux).
type Caller struct {
	UID uint32
	// GID is the primary group.
	GID uint32
	// Groups are the supplementary groups.
	Groups []uint32
	// Opened is the access an open handle granted on inode OpenedIno,
	// for a call made through that handle (open-time permission
	// semantics, as a file descriptor's): may does not check it again on
	// that inode, whatever its mode and owner say now. Zero for a call
	// without a handle.
	Opened    Access
	OpenedIno Ino
}

// Root reports whether c is root (UID 0).
func (c Caller) Root() bool { return c.UID == 0 }

// InGroup reports whether gid is c's primary group or one of its
// supplementary groups.
func (c Caller) InGroup(gid uint32) bool {
	return c.GID == gid || slices.Contains(c.Groups, gid)
}

// owns reports whether c may change a's attributes as its owner: it is
// the owner, or root (inode_owner_or_capable).
func (c Caller) owns(a *Attr) bool { return c.UID == 0 || c.UID == a.UID }

// may checks that c has every access in want to a (generic_permission):
// the owner's bits apply to the owner, the group's to a member of the
// file's group, the others' to everyone else, each class alone (an owner
// whose bits deny is denied even if the others' bits allow). Root may
// read and write anything, search any directory, and execute a file that
// has at least one execute bit. Symlinks are never checked: their own
// mode means nothing. EACCES when denied.
func (c Caller) may(a *Attr, want Access) error {
	mode := a.Mode
	if want == 0 || mode&ModeType == ModeSymlink {
		return nil
	}
	if c.Opened != 0 && a.Ino == c.OpenedIno && want&^c.Opened == 0 {
		return nil // granted when the handle was opened
	}
	if c.UID == 0 {
		if want&MayExec == 0 || mode&ModeType == ModeDir || mode&0o111 != 0 {
			return nil
		}
		return c.denied(a, want)
	}
	var bits uint32
	switch {
	case c.UID == a.UID:
		bits = mode >> 6
	case c.InGroup(a.GID):
		bits = mode >> 3
	default:
		bits = mode
	}
	if uint32(want)&^bits&7 == 0 {
		return nil
	}
	return c.denied(a, want)
}

func (c Caller) denied(a *Attr, want Access) error {
	var s strings.Builder
	for _, b := range []struct {
		bit  Access
		name string
	}{{MayRead, "read"}, {MayWrite, "write"}, {MayExec, "search"}} {
		if want&b.bit != 0 {
			if s.Len() > 0 {
				s.WriteByte('+')
			}
			if b.bit == MayExec && a.Mode&ModeType != ModeDir {
				s.WriteString("execute")
			} else {
				s.WriteString(b.name)
			}
		}
	}
	return fmt.Errorf("inode %d (mode %#o, owner %d:%d): %s denied to uid %d: %w",
		a.Ino, a.Mode&ModePerm, a.UID, a.GID, s.String(), c.UID, syscall.EACCES)
}

// search checks that c may look names up in directory d.
func (c Caller) search(d *Attr) error { return c.may(d, MayExec) }

// mayCreate checks that c may add an entry to directory d (may_create):
// write and search.
func (c Caller) mayCreate(d *Attr) error { return c.may(d, MayWrite|MayExec) }

// mayDelete checks that c may remove (or rename away, or replace) the
// entry for victim from directory d (may_delete): write and search on d,
// and, if d is sticky, c must own victim or d, or be root (EPERM).
func (c Caller) mayDelete(d, victim *Attr) error {
	if err := c.may(d, MayWrite|MayExec); err != nil {
		return err
	}
	if d.Mode&ModeSticky != 0 && c.UID != 0 && c.UID != victim.UID && c.UID != d.UID {
		return fmt.Errorf("inode %d in sticky directory %d: uid %d owns neither: %w", victim.Ino, d.Ino, c.UID, syscall.EPERM)
	}
	return nil
}

// newOwner returns the owner and mode of a new inode of mode (type and
// permission bits) in directory d (inode_init_owner, mode_strip_sgid):
// the caller's uid, and its gid, except in a setgid directory, whose
// group the new inode takes, a new directory inheriting the setgid bit
// too. A new file in a setgid directory loses a requested setgid bit
// that comes with group execute when the caller is neither in that group
// nor root.
func (c Caller) newOwner(d *Attr, mode uint32) (uid, gid, newMode uint32) {
	if d.Mode&ModeSetgid == 0 {
		return c.UID, c.GID, mode
	}
	switch {
	case mode&ModeType == ModeDir:
		mode |= ModeSetgid
	case mode&(ModeSetgid|0o010) == ModeSetgid|0o010 && c.UID != 0 && !c.InGroup(d.GID):
		mode &^= ModeSetgid
	}
	return c.UID, d.GID, mode
}

// clearSetID removes the setuid bit of a regular file, and its setgid bit
// if group execute is set (a setgid bit without it is not a privilege),
// as a change of its data or owner does (should_remove_suid). It reports
// whether the mode changed.
func clearSetID(a *Attr) bool {
	if a.Mode&ModeType != ModeRegular {
		return false
	}
	old := a.Mode
	a.Mode &^= ModeSetuid
	if a.Mode&0o010 != 0 {
		a.Mode &^= ModeSetgid
	}
	return a.Mode != old
}

// wrote applies to a, whose data c changed (write, truncate, fallocate,
// the destination of a copy), what such a change does to its privileges
// (file_remove_privs): root keeps them (CAP_FSETID), anyone else loses
// them (clearSetID).
func (c Caller) wrote(a *Attr) {
	if c.UID != 0 {
		clearSetID(a)
	}
}

// checkSetAttr checks the change sa to a by c (setattr_prepare,
// may_setattr) and returns the mode to set if SetMode is in sa.Mask
// (mode may lose its setgid bit):
//
//   - size (truncate): write permission (EACCES);
//   - uid: only root changes the owner; the owner may "change" it to
//     itself (EPERM);
//   - gid: root, or the owner to its own primary or supplementary group
//     (EPERM);
//   - mode: the owner or root (EPERM); the setgid bit is dropped when
//     the caller is neither root nor in the file's group (the new group
//     if sa changes it too);
//   - times: the owner or root may set any time (EPERM otherwise); a
//     caller with write permission may set both atime and mtime to now
//     (SetAtimeNow|SetMtimeNow and no other time: touch), which is EACCES
//     without it. Crtime counts as an explicit time.
func (c Caller) checkSetAttr(a *Attr, sa *SetAttr) (mode uint32, err error) {
	mode = a.Mode&ModeType | sa.Mode&ModePerm
	if sa.Mask&SetSize != 0 {
		if err := c.may(a, MayWrite); err != nil {
			return 0, err
		}
	}
	if sa.Mask&SetUID != 0 && c.UID != 0 && !(c.UID == a.UID && sa.UID == a.UID) {
		return 0, fmt.Errorf("chown inode %d (owner %d) to uid %d by uid %d: only root changes the owner: %w", a.Ino, a.UID, sa.UID, c.UID, syscall.EPERM)
	}
	if sa.Mask&SetGID != 0 && c.UID != 0 && !(c.UID == a.UID && (sa.GID == a.GID || c.InGroup(sa.GID))) {
		return 0, fmt.Errorf("chgrp inode %d (owner %d) to gid %d by uid %d: only the owner, to one of its groups, or root: %w", a.Ino, a.UID, sa.GID, c.UID, syscall.EPERM)
	}
	if sa.Mask&SetMode != 0 {
		if !c.owns(a) {
			return 0, fmt.Errorf("chmod inode %d (owner %d) by uid %d: only the owner or root: %w", a.Ino, a.UID, c.UID, syscall.EPERM)
		}
		gid := a.GID
		if sa.Mask&SetGID != 0 {
			gid = sa.GID
		}
		if c.UID != 0 && !c.InGroup(gid) {
			mode &^= ModeSetgid
		}
	}
	switch times := sa.Mask & (SetAtime | SetMtime | SetCrtime | SetAtimeNow | SetMtimeNow); {
	case times == 0:
	case times == SetAtimeNow|SetMtimeNow:
		if !c.owns(a) {
			if err := c.may(a, MayWrite); err != nil {
				return 0, err
			}
		}
	case !c.owns(a):
		return 0, fmt.Errorf("set times of inode %d (owner %d) by uid %d: only the owner or root sets times other than now: %w", a.Ino, a.UID, c.UID, syscall.EPERM)
	}
	return mode, nil
}

// Xattr namespaces that only root may use.
var privilegedXattrPrefixes = []string{"trusted.", "security.", "system."}

// privilegedXattr reports whether name is in a namespace only root may
// read or change (trusted.*, security.*, system.*).
func privilegedXattr(name string) bool {
	for _, p := range privilegedXattrPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// mayXattr checks that c may read (write false) or change (write true)
// the extended attribute name of a (xattr_permission). trusted.*,
// security.* and system.* are root's: to anyone else they do not exist
// (ENODATA) and cannot be set or removed (EPERM). Every other name
// (user.* and names without a namespace) follows the file's permissions
// (read to get, write to set or remove; EACCES), exists only on regular
// files and directories (EPERM to set, ENODATA to get on a symlink, even
// for root), and on a sticky directory only its owner or root may change
// it (EPERM).
func (c Caller) mayXattr(a *Attr, name string, write bool) error {
	if privilegedXattr(name) {
		switch {
		case c.UID == 0:
			return nil
		case write:
			return fmt.Errorf("xattr %q of inode %d: only root: %w", name, a.Ino, syscall.EPERM)
		}
		return fmt.Errorf("xattr %q of inode %d: %w", name, a.Ino, syscall.ENODATA)
	}
	switch t := a.Mode & ModeType; {
	case t != ModeRegular && t != ModeDir && write:
		return fmt.Errorf("xattr %q on inode %d: only regular files and directories have them: %w", name, a.Ino, syscall.EPERM)
	case t != ModeRegular && t != ModeDir:
		return fmt.Errorf("xattr %q of inode %d: %w", name, a.Ino, syscall.ENODATA)
	case t == ModeDir && a.Mode&ModeSticky != 0 && write && !c.owns(a):
		return fmt.Errorf("xattr %q of sticky directory %d (owner %d) by uid %d: %w", name, a.Ino, a.UID, c.UID, syscall.EPERM)
	}
	if write {
		return c.may(a, MayWrite)
	}
	return c.may(a, MayRead)
}

// mayListXattr checks that c may list a's extended attributes: read
// permission, except on a symlink (never checked). Names c may not read
// are left out of the list (xattrListable).
func (c Caller) mayListXattr(a *Attr) error { return c.may(a, MayRead) }

// xattrListable reports whether name appears in c's list of a file's
// attributes.
func (c Caller) xattrListable(name string) bool { return c.UID == 0 || !privilegedXattr(name) }
