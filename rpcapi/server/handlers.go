package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"syscall"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// method runs one JSON-RPC method on its raw params, for the connection
// whose mounts hd holds.
// method is one entry of the method table, the one place where a call's
// policy is decided for both channels: whether it changes the volume
// (EROFS on a read-only mount or volume), and how its JSON form runs. A
// binary opcode is the method wire.OpName names: binaryOp takes its policy
// from here and shares its checks (checkMode, readdirBatch).
type method struct {
	// mutates says the call changes the volume.
	mutates bool
	// json runs the call from its JSON params.
	json func(ctx context.Context, s *Server, hd *mount.Holder, params *json.RawMessage) (any, error)
}

// env is what a call on a mount works with.
type env struct {
	m  *mount.Mount
	v  *volume
	fs *inode.FS
	// as is the call's own identity (a per-call identity), nil for the
	// mount's.
	as *mount.Identity
}

// Readdir batch sizes.
const (
	readdirDefault = inode.DefaultReadDirMax
	readdirMax     = 4096
)

// readdirBatch is how many entries a readdir batch holds when the caller
// asks for max (0: the default), on both channels.
func readdirBatch(max uint64) int {
	switch {
	case max == 0:
		return readdirDefault
	case max > readdirMax:
		return readdirMax
	}
	return int(max)
}

// checkMode is the rule for the mode of create and mkdir on both
// channels: its permission bits are used; file type bits are accepted and
// ignored (C callers pass S_IFREG|0644); a bit above them is EINVAL.
func checkMode(method string, mode uint64) error {
	if mode > inode.ModePerm|inode.ModeType {
		return fmt.Errorf("%s: mode %#o: %w", method, mode, syscall.EINVAL)
	}
	return nil
}

// env resolves a mount id for the connection whose mounts hd holds (the
// first use of a mount on a connection attaches it: see package mount)
// and the identity the call runs as: as, a per-call identity, or nil for
// the mount's. The connection's principal p must be allowed to act as
// that identity (EPERM) and to use the volume (EACCES). EROFS for a
// change on a read-only mount or volume.
func (s *Server) env(p *principal, hd *mount.Holder, id uint64, mutates bool, as *wire.Identity) (*env, error) {
	if p.refused != "" {
		return nil, p.errRefused()
	}
	m, err := hd.Get(id)
	if err != nil {
		return nil, err
	}
	v := s.volumes[m.Volume]
	if v == nil { // volumes never go away while the server runs
		return nil, fmt.Errorf("mount %d: volume %q not open: %w", id, m.Volume, syscall.EIO)
	}
	e := &env{m: m, v: v, fs: v.fs}
	who := m.Identity
	if as != nil {
		if len(as.Groups) > mount.MaxGroups {
			return nil, errParams("member \"as\": %d groups (at most %d)", len(as.Groups), mount.MaxGroups)
		}
		mi := mountIdentity(as)
		e.as, who = &mi, mi
	}
	// The common cases cost no more than a comparison: a gateway, or a
	// principal acting as itself on an open volume.
	readOnly := false
	if !p.gateway || v.access != nil {
		var err error
		if readOnly, err = s.authorize(p, v, who, "mount "+strconv.FormatUint(id, 10)); err != nil {
			return nil, err
		}
	}
	if mutates {
		if err := e.writable(); err != nil {
			return nil, err
		}
		// Also on a read-write mount made by another principal (mount
		// ids are shared across connections).
		if readOnly {
			return nil, fmt.Errorf("%s has read-only access to volume %q (users_ro, groups_ro): %w", p.desc, v.name, syscall.EROFS)
		}
	}
	return e, nil
}

// writable returns EROFS if the mount or its volume is read-only.
func (e *env) writable() error {
	switch {
	case e.m.ReadOnly:
		return fmt.Errorf("mount %d is read-only: %w", e.m.ID, syscall.EROFS)
	case e.v.readOnly:
		return fmt.Errorf("volume %q is read-only: %w", e.v.name, syscall.EROFS)
	}
	return nil
}

// handler builds a method from a function on decoded params of type P.
// If P has a MountID member, the mount is resolved first (bad_mount if it
// is not live; EROFS if mutates and it is read-only). optional names
// members that may be left out.
func handler[P any](mutates bool, optional []string, fn func(ctx context.Context, s *Server, e *env, p *P) (any, error)) method {
	// The MountID member is found once, here, not by name on every call.
	f, hasMount := reflect.TypeFor[P]().FieldByName("MountID")
	idx := f.Index
	return method{mutates: mutates, json: func(ctx context.Context, s *Server, hd *mount.Holder, raw *json.RawMessage) (any, error) {
		p := new(P)
		if !hasMount {
			if err := decodeParams(raw, p, optional); err != nil {
				return nil, err
			}
			return fn(ctx, s, nil, p)
		}
		as, err := decodeParamsAs(raw, p, optional)
		if err != nil {
			return nil, err
		}
		e, err := s.env(authOf(ctx).get(), hd, reflect.ValueOf(p).Elem().FieldByIndex(idx).Uint(), mutates, as)
		if err != nil {
			return nil, err
		}
		return fn(ctx, s, e, p)
	}}
}

// Shorthands for the method table.
const (
	ro  = false // does not change the volume
	mut = true  // changes the volume: EROFS on a read-only mount
)

// methods is the method table: every method of PROTOCOL.md.
var methods = map[string]method{
	wire.MethodPing: handler(ro, nil, func(_ context.Context, s *Server, _ *env, _ *struct{}) (any, error) {
		return wire.PingResult{Version: wire.Version, Server: "proxyfsd " + s.version}, nil
	}),
	// mount and unmount work on the connection's holder itself: the new
	// mount is held by the connection that made it, and unmount does not
	// attach the mount first (a connection at max_mounts_per_connection
	// can always unmount).
	wire.MethodMount: {json: func(ctx context.Context, s *Server, hd *mount.Holder, raw *json.RawMessage) (any, error) {
		var p wire.MountParams
		if err := decodeParams(raw, &p, []string{"options", "user", "groups", "client"}); err != nil {
			return nil, err
		}
		if len(p.Client) > wire.MaxClientID {
			return nil, fmt.Errorf("mount: client of %d bytes (at most %d): %w", len(p.Client), wire.MaxClientID, syscall.EINVAL)
		}
		id := mount.Identity{User: p.User, UID: p.UID, GID: p.GID, Groups: p.Groups, Client: p.Client}
		pr := authOf(ctx).get()
		opts := p.Options
		if v := s.volumes[p.Volume]; v != nil && len(p.Groups) <= mount.MaxGroups {
			ro, err := s.authorize(pr, v, id, wire.MethodMount)
			if err != nil {
				return nil, err
			}
			// A principal with read-only access gets a read-only mount,
			// whatever it asked for (as an NFS export with "ro").
			if ro {
				opts |= wire.MountReadOnly
			}
		}
		m, err := hd.Mount(p.Volume, opts, id)
		if err != nil {
			return nil, err
		}
		c := (&env{m: m, v: s.volumes[m.Volume]}).caller()
		return wire.MountResult{MountID: m.ID, RootInode: uint64(inode.RootIno),
			MaxIOSize: uint32(s.cfg.MaxIOBytes), MaxInflight: uint32(s.cfg.MaxInflightPerConn),
			UID: &c.UID, GID: &c.GID, ReadOnly: m.ReadOnly}, nil
	}},
	wire.MethodAuth: {json: func(ctx context.Context, s *Server, _ *mount.Holder, raw *json.RawMessage) (any, error) {
		var p wire.AuthParams
		if err := decodeParams(raw, &p, nil); err != nil {
			return nil, err
		}
		pr, err := s.authenticate(authOf(ctx), p.Token)
		if err != nil {
			return nil, err
		}
		return authResult(pr), nil
	}},
	wire.MethodUnmount: {json: func(ctx context.Context, s *Server, hd *mount.Holder, raw *json.RawMessage) (any, error) {
		var p wire.MountOnly
		if err := decodeParams(raw, &p, nil); err != nil {
			return nil, err
		}
		// Only a principal that may act as the mount's identity may
		// unmount it.
		if m, err := s.mounts.Get(p.MountID); err == nil {
			if v := s.volumes[m.Volume]; v != nil {
				if _, err := s.authorize(authOf(ctx).get(), v, m.Identity, wire.MethodUnmount); err != nil {
					return nil, err
				}
			}
		}
		if err := hd.Unmount(p.MountID); err != nil {
			return nil, err
		}
		s.closeMount(p.MountID) // its open files close with it
		return wire.Empty{}, nil
	}},

	wire.MethodLookup: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.EntryParams) (any, error) {
		return inodeResult(e.fs.Lookup(ctx, e.caller(), inode.Ino(p.Inode), p.Name))
	}),
	wire.MethodLookupPath: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.PathParams) (any, error) {
		return inodeResult(e.fs.Resolve(ctx, e.caller(), p.Path))
	}),
	wire.MethodGetStat: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.InodeParams) (any, error) {
		return e.getStat(ctx, inode.Ino(p.Inode))
	}),
	wire.MethodGetStatPath: handler(ro, []string{"follow"}, func(ctx context.Context, _ *Server, e *env, p *wire.GetStatPathParams) (any, error) {
		if p.Follow {
			_, ino, err := e.fs.Realpath(ctx, e.caller(), p.Path)
			if err != nil {
				return nil, err
			}
			return e.getStat(ctx, ino)
		}
		return onPath(ctx, e, p.Path, e.getStat)
	}),
	wire.MethodType: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.InodeParams) (any, error) {
		a, err := e.fs.GetAttr(ctx, inode.Ino(p.Inode))
		if err != nil {
			return nil, err
		}
		return wire.TypeResult{Type: uint16(a.DirType())}, nil
	}),

	wire.MethodCreate: handler(mut, nil, func(ctx context.Context, s *Server, e *env, p *wire.CreateParams) (any, error) {
		if err := checkMode(wire.MethodCreate, uint64(p.Mode)); err != nil {
			return nil, err
		}
		if p.Open != nil {
			a, fh, err := s.createOpen(ctx, e, wire.MethodCreate, inode.Ino(p.Inode), p.Name, p.Mode, *p.Open)
			if err != nil {
				return nil, err
			}
			return wire.NewInodeResult{Inode: uint64(a.Ino), Stat: e.stat(a), Fh: fh}, nil
		}
		return e.newInode(e.fs.Create(ctx, e.caller(), inode.Ino(p.Inode), p.Name, p.Mode))
	}),
	wire.MethodCreatePath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.CreatePathParams) (any, error) {
		if err := checkMode(wire.MethodCreatePath, uint64(p.Mode)); err != nil {
			return nil, err
		}
		return onParent(ctx, e, p.Path, func(dir inode.Ino, name string) (any, error) {
			return e.newInode(e.fs.Create(ctx, e.caller(), dir, name, p.Mode))
		})
	}),
	wire.MethodMkdir: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.CreateParams) (any, error) {
		if err := checkMode(wire.MethodMkdir, uint64(p.Mode)); err != nil {
			return nil, err
		}
		if p.Open != nil {
			return nil, errParams("member \"open\" is for create only")
		}
		return e.newInode(e.fs.Mkdir(ctx, e.caller(), inode.Ino(p.Inode), p.Name, p.Mode))
	}),
	wire.MethodMkdirPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.CreatePathParams) (any, error) {
		if err := checkMode(wire.MethodMkdirPath, uint64(p.Mode)); err != nil {
			return nil, err
		}
		return onParent(ctx, e, p.Path, func(dir inode.Ino, name string) (any, error) {
			return e.newInode(e.fs.Mkdir(ctx, e.caller(), dir, name, p.Mode))
		})
	}),
	wire.MethodSymlink: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.SymlinkParams) (any, error) {
		return e.newInode(e.fs.Symlink(ctx, e.caller(), inode.Ino(p.Inode), p.Name, p.Target))
	}),
	wire.MethodSymlinkPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.SymlinkPathParams) (any, error) {
		return onParent(ctx, e, p.Path, func(dir inode.Ino, name string) (any, error) {
			return e.newInode(e.fs.Symlink(ctx, e.caller(), dir, name, p.Target))
		})
	}),
	wire.MethodReadSymlink: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.InodeParams) (any, error) {
		return e.readSymlink(ctx, inode.Ino(p.Inode))
	}),
	wire.MethodReadSymlinkPath: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.PathParams) (any, error) {
		return onPath(ctx, e, p.Path, e.readSymlink)
	}),

	wire.MethodLink: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.LinkParams) (any, error) {
		return empty(e.fs.Link(ctx, e.caller(), inode.Ino(p.Inode), p.Name, inode.Ino(p.TargetInode)))
	}),
	wire.MethodLinkPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.TwoPathParams) (any, error) {
		target, err := e.fs.Resolve(ctx, e.caller(), p.SrcPath)
		if err != nil {
			return nil, err
		}
		return onParent(ctx, e, p.DstPath, func(dir inode.Ino, name string) (any, error) {
			return empty(e.fs.Link(ctx, e.caller(), dir, name, target))
		})
	}),
	wire.MethodUnlink: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.EntryParams) (any, error) {
		return empty(e.fs.Unlink(ctx, e.caller(), inode.Ino(p.Inode), p.Name))
	}),
	wire.MethodUnlinkPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.PathParams) (any, error) {
		return onParent(ctx, e, p.Path, func(dir inode.Ino, name string) (any, error) {
			return empty(e.fs.Unlink(ctx, e.caller(), dir, name))
		})
	}),
	wire.MethodRmdir: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.EntryParams) (any, error) {
		return empty(e.fs.Rmdir(ctx, e.caller(), inode.Ino(p.Inode), p.Name))
	}),
	wire.MethodRmdirPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.PathParams) (any, error) {
		return onParent(ctx, e, p.Path, func(dir inode.Ino, name string) (any, error) {
			return empty(e.fs.Rmdir(ctx, e.caller(), dir, name))
		})
	}),
	wire.MethodRename: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.RenameParams) (any, error) {
		return empty(e.fs.Rename(ctx, e.caller(), inode.Ino(p.SrcInode), p.SrcName, inode.Ino(p.DstInode), p.DstName))
	}),
	wire.MethodRenamePath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.TwoPathParams) (any, error) {
		sdir, sname, err := e.fs.ResolveParent(ctx, e.caller(), p.SrcPath)
		if err != nil {
			return nil, err
		}
		return onParent(ctx, e, p.DstPath, func(ddir inode.Ino, dname string) (any, error) {
			return empty(e.fs.Rename(ctx, e.caller(), sdir, sname, ddir, dname))
		})
	}),

	wire.MethodChmod: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.ChmodParams) (any, error) {
		return e.setEmpty(ctx, inode.Ino(p.Inode), inode.SetAttr{Mask: inode.SetMode, Mode: p.Mode})
	}),
	wire.MethodChmodPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.ChmodPathParams) (any, error) {
		return e.setPath(ctx, p.Path, inode.SetAttr{Mask: inode.SetMode, Mode: p.Mode}, false)
	}),
	wire.MethodChown: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.ChownParams) (any, error) {
		sa, err := chown(p.UID, p.GID)
		if err != nil {
			return nil, err
		}
		return e.setEmpty(ctx, inode.Ino(p.Inode), sa)
	}),
	wire.MethodChownPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.ChownPathParams) (any, error) {
		sa, err := chown(p.UID, p.GID)
		if err != nil {
			return nil, err
		}
		return e.setPath(ctx, p.Path, sa, false)
	}),
	wire.MethodResize: handler(mut, nil, func(ctx context.Context, s *Server, e *env, p *wire.ResizeParams) (any, error) {
		c, err := s.through(e, wire.MethodResize, inode.Ino(p.Inode), p.Fh, inode.MayWrite)
		if err != nil {
			return nil, err
		}
		_, err = e.fs.SetAttr(ctx, c, inode.Ino(p.Inode), inode.SetAttr{Mask: inode.SetSize, Size: p.Size})
		return empty(err)
	}),
	wire.MethodResizePath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.ResizePathParams) (any, error) {
		return e.setPath(ctx, p.Path, inode.SetAttr{Mask: inode.SetSize, Size: p.Size}, false)
	}),
	wire.MethodSettime: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.SettimeParams) (any, error) {
		return e.setEmpty(ctx, inode.Ino(p.Inode), settime(p.Atime, p.Mtime))
	}),
	wire.MethodSettimePath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.SettimePathParams) (any, error) {
		return e.setPath(ctx, p.Path, settime(p.Atime, p.Mtime), false)
	}),
	wire.MethodSetattr: handler(mut, nil, func(ctx context.Context, s *Server, e *env, p *wire.SetattrParams) (any, error) {
		sa, err := setattr(&p.SetattrFields)
		if err != nil {
			return nil, err
		}
		if p.Fh == 0 {
			return e.setStat(ctx, inode.Ino(p.Inode), sa)
		}
		// Through a handle: the size only (ftruncate).
		if sa.Mask != inode.SetSize {
			return nil, errParams("member %q: a setattr through a handle changes the size only (mask %d), not mask %d", wire.FhMember, wire.SetSize, sa.Mask)
		}
		c, err := s.through(e, wire.MethodSetattr, inode.Ino(p.Inode), p.Fh, inode.MayWrite)
		if err != nil {
			return nil, err
		}
		a, err := e.fs.SetAttr(ctx, c, inode.Ino(p.Inode), sa)
		if err != nil {
			return nil, err
		}
		return wire.StatResult{Stat: e.stat(a)}, nil
	}),
	wire.MethodSetattrPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.SetattrPathParams) (any, error) {
		sa, err := setattr(&p.SetattrFields)
		if err != nil {
			return nil, err
		}
		return e.setPath(ctx, p.Path, sa, true)
	}),

	wire.MethodFlush: handler(ro, nil, func(ctx context.Context, s *Server, e *env, p *wire.FlushParams) (any, error) {
		if _, err := s.through(e, wire.MethodFlush, inode.Ino(p.Inode), p.Fh, 0); err != nil {
			return nil, err
		}
		return empty(e.fs.Flush(ctx, inode.Ino(p.Inode)))
	}),
	wire.MethodRead: handler(ro, nil, func(ctx context.Context, s *Server, e *env, p *wire.ReadParams) (any, error) {
		if p.Length > uint64(s.cfg.MaxIOBytes) {
			return nil, fmt.Errorf("read of %d bytes exceeds max_io_size %d: %w", p.Length, s.cfg.MaxIOBytes, syscall.EINVAL)
		}
		c, err := s.through(e, wire.MethodRead, inode.Ino(p.Inode), p.Fh, inode.MayRead)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, p.Length)
		n, err := e.fs.Read(ctx, c, inode.Ino(p.Inode), buf, p.Offset)
		if err != nil {
			return nil, err
		}
		s.metrics.DataRead(metrics.ChannelJSON, n)
		return wire.ReadResult{Data: buf[:n]}, nil
	}),
	wire.MethodWrite: handler(mut, nil, func(ctx context.Context, s *Server, e *env, p *wire.WriteParams) (any, error) {
		if len(p.Data) > s.cfg.MaxIOBytes {
			return nil, fmt.Errorf("write of %d bytes exceeds max_io_size %d: %w", len(p.Data), s.cfg.MaxIOBytes, syscall.EINVAL)
		}
		c, err := s.through(e, wire.MethodWrite, inode.Ino(p.Inode), p.Fh, inode.MayWrite)
		if err != nil {
			return nil, err
		}
		if err := e.fs.Write(ctx, c, inode.Ino(p.Inode), p.Data, p.Offset); err != nil {
			return nil, err
		}
		s.metrics.DataWritten(metrics.ChannelJSON, len(p.Data))
		return wire.WriteResult{Size: uint64(len(p.Data))}, nil
	}),
	wire.MethodReaddir: handler(ro, []string{"max_entries"}, func(ctx context.Context, _ *Server, e *env, p *wire.ReaddirParams) (any, error) {
		return e.readdir(ctx, p, false)
	}),
	wire.MethodReaddirPlus: handler(ro, []string{"max_entries"}, func(ctx context.Context, _ *Server, e *env, p *wire.ReaddirPlusParams) (any, error) {
		if p.Xattrs == nil {
			return e.readdir(ctx, &p.ReaddirParams, true)
		}
		ents, eof, err := e.readdirXattr(ctx, inode.Ino(p.Inode), p.PrevCookie, p.MaxEntries, *p.Xattrs, wire.XattrDirBudget/2)
		if err != nil {
			return nil, err
		}
		return wire.ReaddirResult{Entries: ents, EOF: eof}, nil
	}),
	wire.MethodStatvfs: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, _ *wire.MountOnly) (any, error) {
		st, err := e.fs.StatFS(ctx)
		if err != nil {
			return nil, err
		}
		var flag uint64
		if e.writable() != nil {
			flag = 1 // ST_RDONLY
		}
		return wire.StatvfsResult{Bsize: st.BlockSize, Frsize: st.BlockSize, Blocks: st.Blocks,
			Bfree: st.BlocksFree, Bavail: st.BlocksAvail, Files: st.Files, Ffree: st.FilesFree,
			Favail: st.FilesFree, Fsid: e.v.dev, Flag: flag, Namemax: st.NameMax}, nil
	}),

	wire.MethodGetXattr: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.XattrParams) (any, error) {
		return e.getXattr(ctx, inode.Ino(p.Inode), p.Name)
	}),
	wire.MethodGetXattrPath: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.XattrPathParams) (any, error) {
		return onPath(ctx, e, p.Path, func(ctx context.Context, ino inode.Ino) (any, error) { return e.getXattr(ctx, ino, p.Name) })
	}),
	wire.MethodSetXattr: handler(mut, []string{"flags"}, func(ctx context.Context, _ *Server, e *env, p *wire.SetXattrParams) (any, error) {
		return empty(e.fs.SetXattr(ctx, e.caller(), inode.Ino(p.Inode), p.Name, p.Value, p.Flags))
	}),
	wire.MethodSetXattrPath: handler(mut, []string{"flags"}, func(ctx context.Context, _ *Server, e *env, p *wire.SetXattrPathParams) (any, error) {
		return onPath(ctx, e, p.Path, func(ctx context.Context, ino inode.Ino) (any, error) {
			return empty(e.fs.SetXattr(ctx, e.caller(), ino, p.Name, p.Value, p.Flags))
		})
	}),
	wire.MethodListXattr: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.InodeParams) (any, error) {
		return e.listXattr(ctx, inode.Ino(p.Inode))
	}),
	wire.MethodListXattrPath: handler(ro, nil, func(ctx context.Context, _ *Server, e *env, p *wire.PathParams) (any, error) {
		return onPath(ctx, e, p.Path, e.listXattr)
	}),
	wire.MethodRemoveXattr: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.XattrParams) (any, error) {
		return empty(e.fs.RemoveXattr(ctx, e.caller(), inode.Ino(p.Inode), p.Name))
	}),
	wire.MethodRemoveXattrPath: handler(mut, nil, func(ctx context.Context, _ *Server, e *env, p *wire.XattrPathParams) (any, error) {
		return onPath(ctx, e, p.Path, func(ctx context.Context, ino inode.Ino) (any, error) {
			return empty(e.fs.RemoveXattr(ctx, e.caller(), ino, p.Name))
		})
	}),
}

// onPath resolves path and runs the inode form of a call on it.
func onPath(ctx context.Context, e *env, path string, fn func(context.Context, inode.Ino) (any, error)) (any, error) {
	ino, err := e.fs.Resolve(ctx, e.caller(), path)
	if err != nil {
		return nil, err
	}
	return fn(ctx, ino)
}

// onParent resolves all but path's last component and runs the inode
// form of a call on the directory and the last name.
func onParent(ctx context.Context, e *env, path string, fn func(dir inode.Ino, name string) (any, error)) (any, error) {
	dir, name, err := e.fs.ResolveParent(ctx, e.caller(), path)
	if err != nil {
		return nil, err
	}
	return fn(dir, name)
}

func empty(err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

func inodeResult(ino inode.Ino, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return wire.InodeResult{Inode: uint64(ino)}, nil
}

// caller is the identity a call on e runs as, which package inode checks
// every permission against: the mount's uid, gid and groups, with uid 0
// and gid 0 squashed to the volume's anon ids under root_squash. It is
// the one place that decides who a call is; a per-call identity (a
// gateway acting for many users) would replace the mount's here.
func (e *env) caller() inode.Caller {
	c := inode.Caller{UID: e.m.UID, GID: e.m.GID, Groups: e.m.Groups}
	if e.as != nil {
		c = inode.Caller{UID: e.as.UID, GID: e.as.GID, Groups: e.as.Groups}
	}
	if e.v.rootSquash {
		c = squash(c, e.v.anon)
	}
	return c
}

// squash applies root_squash to c: uid 0 becomes anon's uid, and gid 0,
// primary or supplementary, anon's gid (as Linux's NFS server does).
func squash(c, anon inode.Caller) inode.Caller {
	if c.UID == 0 {
		c.UID = anon.UID
	}
	if c.GID == 0 {
		c.GID = anon.GID
	}
	if slices.Contains(c.Groups, 0) {
		groups := slices.Clone(c.Groups)
		for i, g := range groups {
			if g == 0 {
				groups[i] = anon.GID
			}
		}
		c.Groups = groups
	}
	return c
}

// stat converts attributes to the wire form.
func (e *env) stat(a inode.Attr) wire.Stat {
	ts := func(t inode.Timespec) wire.Timespec { return wire.Timespec{Sec: t.Sec, Nsec: t.Nsec} }
	return wire.Stat{Ino: uint64(a.Ino), Mode: a.Mode, Nlink: a.Nlink, UID: a.UID, GID: a.GID,
		Size: a.Size, Dev: e.v.dev, Atime: ts(a.Atime), Mtime: ts(a.Mtime), Ctime: ts(a.Ctime), Crtime: ts(a.Crtime),
		Blocks: e.fs.Blocks(context.Background(), a), Blksize: inode.BlockSize}
}

func (e *env) getStat(ctx context.Context, ino inode.Ino) (any, error) {
	a, err := e.fs.GetAttr(ctx, ino)
	if err != nil {
		return nil, err
	}
	return wire.StatResult{Stat: e.stat(a)}, nil
}

func (e *env) newInode(a inode.Attr, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return wire.NewInodeResult{Inode: uint64(a.Ino), Stat: e.stat(a)}, nil
}

func (e *env) readSymlink(ctx context.Context, ino inode.Ino) (any, error) {
	t, err := e.fs.ReadSymlink(ctx, ino)
	if err != nil {
		return nil, err
	}
	return wire.ReadSymlinkResult{Target: t}, nil
}

func (e *env) setEmpty(ctx context.Context, ino inode.Ino, sa inode.SetAttr) (any, error) {
	_, err := e.fs.SetAttr(ctx, e.caller(), ino, sa)
	return empty(err)
}

func (e *env) setStat(ctx context.Context, ino inode.Ino, sa inode.SetAttr) (any, error) {
	a, err := e.fs.SetAttr(ctx, e.caller(), ino, sa)
	if err != nil {
		return nil, err
	}
	return wire.StatResult{Stat: e.stat(a)}, nil
}

// setPath runs setattr on a path; withStat selects setattr's result.
func (e *env) setPath(ctx context.Context, path string, sa inode.SetAttr, withStat bool) (any, error) {
	return onPath(ctx, e, path, func(ctx context.Context, ino inode.Ino) (any, error) {
		if withStat {
			return e.setStat(ctx, ino, sa)
		}
		return e.setEmpty(ctx, ino, sa)
	})
}

func (e *env) readdir(ctx context.Context, p *wire.ReaddirParams, plus bool) (any, error) {
	ents, eof, err := e.fs.ReadDir(ctx, e.caller(), inode.Ino(p.Inode), p.PrevCookie, readdirBatch(uint64(p.MaxEntries)), plus)
	if err != nil {
		return nil, err
	}
	res := wire.ReaddirResult{Entries: make([]wire.DirEntry, len(ents)), EOF: eof}
	for i, d := range ents {
		res.Entries[i] = wire.DirEntry{Name: d.Name, Inode: uint64(d.Ino), Type: d.Type, Cookie: d.Cookie}
		if plus {
			st := e.stat(d.Attr)
			res.Entries[i].Stat = &st
		}
	}
	return res, nil
}

func (e *env) getXattr(ctx context.Context, ino inode.Ino, name string) (any, error) {
	v, err := e.fs.GetXattr(ctx, e.caller(), ino, name)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return wire.GetXattrResult{Value: v}, nil
}

func (e *env) listXattr(ctx context.Context, ino inode.Ino) (any, error) {
	names, err := e.fs.ListXattr(ctx, e.caller(), ino)
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = []string{}
	}
	return wire.ListXattrResult{Names: names}, nil
}

// chown builds the attribute change of chown; -1 leaves an id unchanged.
func chown(uid, gid int64) (inode.SetAttr, error) {
	var sa inode.SetAttr
	for _, id := range []struct {
		v   int64
		bit uint32
		dst *uint32
	}{{uid, inode.SetUID, &sa.UID}, {gid, inode.SetGID, &sa.GID}} {
		switch {
		case id.v == -1:
		case id.v < 0 || id.v > math.MaxUint32:
			return sa, fmt.Errorf("chown: id %d out of range: %w", id.v, syscall.EINVAL)
		default:
			sa.Mask |= id.bit
			*id.dst = uint32(id.v)
		}
	}
	return sa, nil
}

func ts(t *wire.Timespec) inode.Timespec { return inode.Timespec{Sec: t.Sec, Nsec: t.Nsec} }

// settime builds the attribute change of settime; nil leaves a time.
func settime(atime, mtime *wire.Timespec) inode.SetAttr {
	var sa inode.SetAttr
	if atime != nil {
		sa.Mask |= inode.SetAtime
		sa.Atime = ts(atime)
	}
	if mtime != nil {
		sa.Mask |= inode.SetMtime
		sa.Mtime = ts(mtime)
	}
	return sa
}

// The setattr mask is inode's, bit for bit: this fails to compile if a bit
// differs.
var _ = [1]struct{}{}[wire.SetSize^inode.SetSize|wire.SetMode^inode.SetMode|wire.SetUID^inode.SetUID|
	wire.SetGID^inode.SetGID|wire.SetAtime^inode.SetAtime|wire.SetMtime^inode.SetMtime|
	wire.SetCrtime^inode.SetCrtime|wire.SetAtimeNow^inode.SetAtimeNow|wire.SetMtimeNow^inode.SetMtimeNow]

// setattr converts setattr's params. Every field the mask selects must be
// given (a missing or null member is a nil pointer here); the others are
// ignored, and so are fields for the "now" bits (SetAtimeNow,
// SetMtimeNow), which have none. Unknown mask bits are left to
// inode.SetAttr (EINVAL).
func setattr(a *wire.SetattrFields) (inode.SetAttr, error) {
	sa := inode.SetAttr{Mask: a.Mask}
	for _, f := range []struct {
		bit   uint32
		name  string
		given bool
		set   func()
	}{
		{wire.SetSize, "size", a.Size != nil, func() { sa.Size = *a.Size }},
		{wire.SetMode, "mode", a.Mode != nil, func() { sa.Mode = *a.Mode }},
		{wire.SetUID, "uid", a.UID != nil, func() { sa.UID = *a.UID }},
		{wire.SetGID, "gid", a.GID != nil, func() { sa.GID = *a.GID }},
		{wire.SetAtime, "atime", a.Atime != nil, func() { sa.Atime = ts(a.Atime) }},
		{wire.SetMtime, "mtime", a.Mtime != nil, func() { sa.Mtime = ts(a.Mtime) }},
		{wire.SetCrtime, "crtime", a.Crtime != nil, func() { sa.Crtime = ts(a.Crtime) }},
	} {
		if a.Mask&f.bit == 0 {
			continue
		}
		if !f.given {
			return sa, errParams("mask selects %s but %q is missing or null", f.name, f.name)
		}
		f.set()
	}
	return sa, nil
}
