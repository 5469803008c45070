package inode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// XattrCaps is the extended attribute holding a file's capabilities.
// Linux removes it from a regular file whose data or owner changes,
// whoever changes it (file_remove_privs, and chown), so that a changed
// program never keeps the privileges granted to the old one: so does
// this package, in the same commit as the change (write, a size change,
// fallocate, the destination of a copy, a change of owner or group).
// Clients (the FUSE mount) can then leave that rule to the server.
const XattrCaps = "security.capability"

// dropCaps adds to t the removal of r's file capabilities (XattrCaps), if
// r is a regular file that has them. The caller holds r's stripe lock.
func (fs *FS) dropCaps(ctx context.Context, t *txn, r *record) error {
	if r.Mode&ModeType != ModeRegular {
		return nil
	}
	k := xattrKey(r.Ino, XattrCaps)
	_, err := fs.be.Get(ctx, k)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil
	case err != nil:
		return err
	}
	t.batch.Delete(k)
	return nil
}

func checkXattrName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty xattr name: %w", syscall.EINVAL)
	case len(name) > MaxXattrNameLen:
		return fmt.Errorf("xattr name of %d bytes: %w", len(name), syscall.ERANGE)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("xattr name contains NUL: %w", syscall.EINVAL)
	}
	return nil
}

// GetXattr returns the value of ino's extended attribute name; ENODATA if
// it has none of that name. c needs mayXattr's permission to read it.
func (fs *FS) GetXattr(ctx context.Context, c Caller, ino Ino, name string) ([]byte, error) {
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return nil, err
	}
	if err := c.mayXattr(&r.Attr, name, false); err != nil {
		return nil, err
	}
	v, err := fs.be.Get(ctx, xattrKey(ino, name))
	if errors.Is(err, syscall.ENOENT) {
		return nil, fmt.Errorf("xattr %d %q: %w", ino, name, syscall.ENODATA)
	}
	return v, err
}

// ListXattr returns the names of ino's extended attributes that c may
// see, sorted. c needs read permission (not on a symlink); the names of
// root's namespaces are left out for anyone else (see mayXattr).
func (fs *FS) ListXattr(ctx context.Context, c Caller, ino Ino) ([]string, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return nil, err
	}
	if err := c.mayListXattr(&r.Attr); err != nil {
		return nil, err
	}
	names := []string{}
	pfx := inoKey(pfxXattr, ino)
	err = fs.be.Scan(ctx, pfx, nil, func(k, _ []byte) bool {
		if name := string(k[len(pfx):]); c.xattrListable(name) {
			names = append(names, name)
		}
		return true
	})
	return names, err
}

// SetXattr sets ino's extended attribute name to value (at most 64 KiB).
// With XattrCreate an existing attribute is EEXIST; with XattrReplace a
// missing one is ENODATA. It sets ctime. c needs mayXattr's permission to
// change it.
func (fs *FS) SetXattr(ctx context.Context, c Caller, ino Ino, name string, value []byte, flags int) error {
	if err := checkXattrName(name); err != nil {
		return err
	}
	if len(value) > MaxXattrValueLen {
		return fmt.Errorf("xattr value of %d bytes: %w", len(value), syscall.E2BIG)
	}
	if flags&^(XattrCreate|XattrReplace) != 0 || flags == XattrCreate|XattrReplace {
		return fmt.Errorf("xattr flags %#x: %w", flags, syscall.EINVAL)
	}
	return fs.changeXattr(ctx, c, ino, name, func(exists bool, t *txn) error {
		switch {
		case exists && flags&XattrCreate != 0:
			return fmt.Errorf("xattr %d %q: %w", ino, name, syscall.EEXIST)
		case !exists && flags&XattrReplace != 0:
			return fmt.Errorf("xattr %d %q: %w", ino, name, syscall.ENODATA)
		}
		t.batch.Put(xattrKey(ino, name), append([]byte(nil), value...))
		return nil
	})
}

// RemoveXattr removes ino's extended attribute name; ENODATA if it has
// none of that name. It sets ctime. c needs mayXattr's permission to
// change it.
func (fs *FS) RemoveXattr(ctx context.Context, c Caller, ino Ino, name string) error {
	if err := checkXattrName(name); err != nil {
		return err
	}
	return fs.changeXattr(ctx, c, ino, name, func(exists bool, t *txn) error {
		if !exists {
			return fmt.Errorf("xattr %d %q: %w", ino, name, syscall.ENODATA)
		}
		t.batch.Delete(xattrKey(ino, name))
		t.frees = true
		return nil
	})
}

// changeXattr checks that c may change attribute name of ino, runs
// change with the inode locked and commits its batch together with the
// new ctime.
func (fs *FS) changeXattr(ctx context.Context, c Caller, ino Ino, name string, change func(exists bool, t *txn) error) error {
	return fs.optimistic(ctx, func(ctx context.Context) error { return fs.changeXattrOnce(ctx, c, ino, name, change) })
}

func (fs *FS) changeXattrOnce(ctx context.Context, c Caller, ino Ino, name string, change func(exists bool, t *txn) error) error {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	mu := &fs.stripe[ino%stripes]
	mu.Lock()
	defer mu.Unlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return err
	}
	if err := c.mayXattr(&r.Attr, name, true); err != nil {
		return err
	}
	_, err = fs.be.Get(ctx, xattrKey(ino, name))
	exists := err == nil
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	t := fs.newTxn()
	if err := change(exists, t); err != nil {
		return err
	}
	r.Ctime = fs.now()
	t.put(r)
	return t.commit(ctx)
}
