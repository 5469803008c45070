package fusefs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// GetXAttr answers getxattr: ENODATA for a missing attribute, ERANGE with
// the size when dest is too small (the kernel asks for the size with an
// empty buffer).
func (fs *FS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	ctx, m := fs.as(cancel, &header.Caller)
	v, err := m.GetXattr(ctx, header.NodeId, attr)
	if err != nil {
		return 0, status(err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), fuse.ERANGE
	}
	return uint32(copy(dest, v)), fuse.OK
}

// ListXAttr answers listxattr: the names, each ended by a NUL.
func (fs *FS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	ctx, m := fs.as(cancel, &header.Caller)
	names, err := m.ListXattr(ctx, header.NodeId)
	if err != nil {
		return 0, status(err)
	}
	var b []byte
	for _, n := range names {
		b = append(append(b, n...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), fuse.ERANGE
	}
	return uint32(copy(dest, b)), fuse.OK
}

// SetXAttr answers setxattr; XATTR_CREATE and XATTR_REPLACE are the
// server's flags.
func (fs *FS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	return status(m.SetXattr(ctx, in.NodeId, attr, data, int(in.Flags)))
}

// RemoveXAttr answers removexattr.
func (fs *FS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	ctx, m := fs.as(cancel, &header.Caller)
	return status(m.RemoveXattr(ctx, header.NodeId, attr))
}

// Access answers access(2) for a mount without default_permissions (the
// kernel checks itself otherwise and never sends it): the caller's uid,
// gid and supplementary groups against the inode's mode, as Linux does
// (root may do anything but execute a file that no one may execute).
func (fs *FS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	st, err := m.GetStat(ctx, in.NodeId)
	if err != nil {
		return status(err)
	}
	if !mayAccess(&in.Caller, &st, in.Mask&7) {
		return fuse.EACCES
	}
	return fuse.OK
}

// mayAccess reports whether caller c has the access want (the bits of
// access(2): 4 read, 2 write, 1 execute or search; 0 is existence) to an
// inode of attributes st, as the server's rule decides (PROTOCOL.md,
// "Permissions").
func mayAccess(c *fuse.Caller, st *client.Stat, want uint32) bool {
	if want == 0 {
		return true
	}
	if c.Uid == 0 {
		return want&1 == 0 || st.Mode&0o040000 != 0 || st.Mode&0o111 != 0
	}
	var bits uint32
	switch {
	case c.Uid == st.UID:
		bits = st.Mode >> 6 & 7
	case c.Gid == st.GID || inGroup(c.Pid, st.GID):
		bits = st.Mode >> 3 & 7
	default:
		bits = st.Mode & 7
	}
	return bits&want == want
}

// callerGroups returns the supplementary groups of process pid (from
// /proc: FUSE requests carry only the caller's uid, gid and pid).
func callerGroups(pid uint32) ([]uint32, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var gs []uint32
		for _, g := range strings.Fields(rest) {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, err
			}
			gs = append(gs, uint32(n))
		}
		return gs, nil
	}
	return nil, syscall.ESRCH
}

// inGroup says whether process pid has gid among its supplementary groups.
func inGroup(pid, gid uint32) bool {
	gs, _ := callerGroups(pid)
	for _, g := range gs {
		if g == gid {
			return true
		}
	}
	return false
}
