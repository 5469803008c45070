package inode_test

import (
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
)

// The permission model (perm.go), rule by rule, as each of four callers:
// the owner of the files the scenes make, a member of their group (by a
// supplementary group), another user, and root. Each case runs on a fresh
// volume per caller; the scene is built as root. The expectations follow
// Linux (and what pjdfstest checks of it).

// Identities. The scenes' files belong to uid 1000, group 100.
var (
	pOwner = inode.Caller{UID: 1000, GID: 100, Groups: []uint32{600}}
	pGroup = inode.Caller{UID: 1001, GID: 200, Groups: []uint32{300, 100}}
	pOther = inode.Caller{UID: 1002, GID: 400, Groups: []uint32{500}}
	pRoot  = inode.Caller{}
)

const (
	ownerUID = 1000
	groupGID = 100
)

// who lists the callers in the order of a case's want.
var who = []struct {
	name string
	c    inode.Caller
}{{"owner", pOwner}, {"group", pGroup}, {"other", pOther}, {"root", pRoot}}

// want is a case's outcome per caller: owner, group member, other, root.
type want [4]syscall.Errno

// all is a want of the same errno for everyone but root, who succeeds.
func allBut0(e syscall.Errno) want { return want{e, e, e, 0} }

type permCase struct {
	name string
	run  func(t *testing.T, fs *inode.FS, c inode.Caller) error
	want want
}

func runPermCases(t *testing.T, cases []permCase) {
	t.Helper()
	for _, pc := range cases {
		for i, w := range who {
			t.Run(pc.name+"/"+w.name, func(t *testing.T) {
				fs, _ := inodetest.New(t)
				err := pc.run(t, fs, w.c)
				wantErr(t, pc.name+" as "+w.name, err, pc.want[i])
			})
		}
	}
}

// mk makes name in dir as root, of kind 'f' (file), 'd' (directory) or
// 'l' (symlink to "target"), owned by 1000:100 with permission bits perm
// (ignored for symlinks).
func mk(t *testing.T, fs *inode.FS, dir inode.Ino, name string, kind byte, perm uint32) inode.Attr {
	t.Helper()
	var a inode.Attr
	var err error
	switch kind {
	case 'f':
		a, err = fs.Create(ctx, pRoot, dir, name, 0o600)
	case 'd':
		a, err = fs.Mkdir(ctx, pRoot, dir, name, 0o700)
	case 'l':
		a, err = fs.Symlink(ctx, pRoot, dir, name, "target")
	}
	wantErr(t, "make "+name, err, 0)
	sa := inode.SetAttr{Mask: inode.SetUID | inode.SetGID, UID: ownerUID, GID: groupGID}
	if kind != 'l' {
		sa.Mask |= inode.SetMode
		sa.Mode = perm
	}
	a, err = fs.SetAttr(ctx, pRoot, a.Ino, sa)
	wantErr(t, "own "+name, err, 0)
	return a
}

// chmod sets ino's permission bits as root.
func chmod(t *testing.T, fs *inode.FS, ino inode.Ino, perm uint32) {
	t.Helper()
	_, err := fs.SetAttr(ctx, pRoot, ino, inode.SetAttr{Mask: inode.SetMode, Mode: perm})
	wantErr(t, "chmod", err, 0)
}

// chown sets ino's owner as root.
func chown(t *testing.T, fs *inode.FS, ino inode.Ino, uid, gid uint32) {
	t.Helper()
	_, err := fs.SetAttr(ctx, pRoot, ino, inode.SetAttr{Mask: inode.SetUID | inode.SetGID, UID: uid, GID: gid})
	wantErr(t, "chown", err, 0)
}

// scene makes /d (a directory of dirPerm) holding f (a file of filePerm,
// with a byte of data), both owned by 1000:100.
func scene(t *testing.T, fs *inode.FS, dirPerm, filePerm uint32) (d, f inode.Attr) {
	t.Helper()
	d = mk(t, fs, inode.RootIno, "d", 'd', 0o777)
	f = mk(t, fs, d.Ino, "f", 'f', 0o666)
	wantErr(t, "write f", fs.Write(ctx, pRoot, f.Ino, []byte("x"), 0), 0)
	chmod(t, fs, f.Ino, filePerm)
	chmod(t, fs, d.Ino, dirPerm)
	return d, f
}

// Read and write permission on a file, by each class of bits alone: the
// owner's bits apply to the owner only (even when the others' bits allow
// more), the group's to members of the group, primary or supplementary.
func TestPermReadWriteClasses(t *testing.T) {
	read := func(perm uint32) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			_, f := scene(t, fs, 0o755, perm)
			_, err := fs.Read(ctx, c, f.Ino, make([]byte, 1), 0)
			return err
		}
	}
	write := func(perm uint32) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			_, f := scene(t, fs, 0o755, perm)
			return fs.Write(ctx, c, f.Ino, []byte("y"), 0)
		}
	}
	const E = syscall.EACCES
	runPermCases(t, []permCase{
		{"read 0400", read(0o400), want{0, E, E, 0}},
		{"read 0040", read(0o040), want{E, 0, E, 0}},
		{"read 0004", read(0o004), want{E, E, 0, 0}},
		{"read 0044", read(0o044), want{E, 0, 0, 0}},
		{"read 0404", read(0o404), want{0, E, 0, 0}},
		{"read 0000", read(0o000), want{E, E, E, 0}},
		{"read 0333", read(0o333), want{E, E, E, 0}},
		{"write 0200", write(0o200), want{0, E, E, 0}},
		{"write 0020", write(0o020), want{E, 0, E, 0}},
		{"write 0002", write(0o002), want{E, E, 0, 0}},
		{"write 0466", write(0o466), want{E, 0, 0, 0}},
		{"write 0555", write(0o555), want{E, E, E, 0}},
	})
}

// The primary group counts as the supplementary ones do.
func TestPermPrimaryGroup(t *testing.T) {
	fs, _ := inodetest.New(t)
	_, f := scene(t, fs, 0o755, 0o040)
	_, err := fs.Read(ctx, inode.Caller{UID: 7, GID: groupGID}, f.Ino, make([]byte, 1), 0)
	wantErr(t, "read as primary member", err, 0)
	_, err = fs.Read(ctx, inode.Caller{UID: 7, GID: 8, Groups: []uint32{9}}, f.Ino, make([]byte, 1), 0)
	wantErr(t, "read as non-member", err, syscall.EACCES)
}

// Search permission on every directory a lookup or a path resolution
// looks a name up in; read permission to list a directory (and search
// too for the entries' attributes).
func TestPermSearchAndList(t *testing.T) {
	const E = syscall.EACCES
	// /d (perm) holds f; /d/sub (0777) holds g; /l is a symlink to d/sub.
	lookupScene := func(perm uint32) func(*testing.T, *inode.FS) inode.Attr {
		return func(t *testing.T, fs *inode.FS) inode.Attr {
			d, _ := scene(t, fs, 0o777, 0o644)
			sub := mk(t, fs, d.Ino, "sub", 'd', 0o777)
			mk(t, fs, sub.Ino, "g", 'f', 0o644)
			_, err := fs.Symlink(ctx, pRoot, inode.RootIno, "l", "d/sub")
			wantErr(t, "symlink", err, 0)
			chmod(t, fs, d.Ino, perm)
			return d
		}
	}
	op := func(perm uint32, fn func(fs *inode.FS, c inode.Caller, d inode.Attr) error) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			return fn(fs, c, lookupScene(perm)(t, fs))
		}
	}
	lookupF := func(fs *inode.FS, c inode.Caller, d inode.Attr) error {
		_, err := fs.Lookup(ctx, c, d.Ino, "f")
		return err
	}
	lookupDotDot := func(fs *inode.FS, c inode.Caller, d inode.Attr) error {
		_, err := fs.Lookup(ctx, c, d.Ino, "..")
		return err
	}
	lookupCI := func(fs *inode.FS, c inode.Caller, d inode.Attr) error {
		_, _, err := fs.LookupCI(ctx, c, d.Ino, "F")
		return err
	}
	resolveDeep := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, err := fs.Resolve(ctx, c, "/d/sub/g")
		return err
	}
	resolveDotDot := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, err := fs.Resolve(ctx, c, "d/../l")
		return err
	}
	resolveLink := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, err := fs.Resolve(ctx, c, "l/g") // follows l into d
		return err
	}
	resolveItself := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, err := fs.Resolve(ctx, c, "/d") // looked up in /, not in d
		return err
	}
	parent := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, _, err := fs.ResolveParent(ctx, c, "/d/sub/new")
		return err
	}
	parentOfD := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, _, err := fs.ResolveParent(ctx, c, "/d/new")
		return err
	}
	realpath := func(fs *inode.FS, c inode.Caller, _ inode.Attr) error {
		_, _, err := fs.Realpath(ctx, c, "/l")
		return err
	}
	readdir := func(plus bool) func(fs *inode.FS, c inode.Caller, d inode.Attr) error {
		return func(fs *inode.FS, c inode.Caller, d inode.Attr) error {
			_, _, err := fs.ReadDir(ctx, c, d.Ino, -1, 0, plus)
			return err
		}
	}
	runPermCases(t, []permCase{
		{"lookup in 0700", op(0o700, lookupF), want{0, E, E, 0}},
		{"lookup in 0710", op(0o710, lookupF), want{0, 0, E, 0}},
		{"lookup in 0601", op(0o601, lookupF), want{E, E, 0, 0}},
		{"lookup in 0666", op(0o666, lookupF), allBut0(E)},
		{"lookup .. in 0666", op(0o666, lookupDotDot), allBut0(E)},
		{"lookup_ci in 0700", op(0o700, lookupCI), want{0, E, E, 0}},
		{"resolve through 0700", op(0o700, resolveDeep), want{0, E, E, 0}},
		{"resolve .. of 0700", op(0o700, resolveDotDot), want{0, E, E, 0}},
		{"resolve symlink into 0700", op(0o700, resolveLink), want{0, E, E, 0}},
		{"resolve 0000 itself", op(0o000, resolveItself), want{0, 0, 0, 0}},
		{"resolve parent through 0700", op(0o700, parent), want{0, E, E, 0}},
		{"resolve parent 0000", op(0o000, parentOfD), want{0, 0, 0, 0}},
		{"realpath through 0700", op(0o700, realpath), want{0, E, E, 0}},
		{"readdir 0700", op(0o700, readdir(false)), want{0, E, E, 0}},
		{"readdir 0340", op(0o340, readdir(false)), want{E, 0, E, 0}},
		{"readdir 0333", op(0o333, readdir(false)), allBut0(E)},
		{"readdir plus 0444", op(0o444, readdir(true)), allBut0(E)},
		{"readdir plus 0555", op(0o555, readdir(true)), want{0, 0, 0, 0}},
	})
	// stat needs nothing of the inode, and a symlink's mode nothing.
	fs, _ := inodetest.New(t)
	d, f := scene(t, fs, 0o000, 0o000)
	_, err := fs.GetAttr(ctx, f.Ino)
	wantErr(t, "getattr", err, 0)
	l := mk(t, fs, inode.RootIno, "link", 'l', 0)
	_, err = fs.ReadSymlink(ctx, l.Ino)
	wantErr(t, "readlink", err, 0)
	_, err = fs.Lookup(ctx, pOther, d.Ino, "f")
	wantErr(t, "lookup in 0000", err, syscall.EACCES)
}

// Root may execute a file only if one execute bit is set; it searches
// any directory (see the internal test of may for execute).

// Creating entries: search, then EEXIST, then write on the directory.
func TestPermCreate(t *testing.T) {
	const E = syscall.EACCES
	type mkfn func(fs *inode.FS, c inode.Caller, dir inode.Ino, name string) error
	create := func(fs *inode.FS, c inode.Caller, dir inode.Ino, name string) error {
		_, err := fs.Create(ctx, c, dir, name, 0o644)
		return err
	}
	mkdir := func(fs *inode.FS, c inode.Caller, dir inode.Ino, name string) error {
		_, err := fs.Mkdir(ctx, c, dir, name, 0o755)
		return err
	}
	symlink := func(fs *inode.FS, c inode.Caller, dir inode.Ino, name string) error {
		_, err := fs.Symlink(ctx, c, dir, name, "t")
		return err
	}
	var target inode.Ino
	link := func(fs *inode.FS, c inode.Caller, dir inode.Ino, name string) error {
		return fs.Link(ctx, c, dir, name, target)
	}
	in := func(perm uint32, name string, fn mkfn) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			d, _ := scene(t, fs, 0o777, 0o000) // f: 0000, linkable by anyone
			target = lookup(t, fs, d.Ino, "f")
			chmod(t, fs, d.Ino, perm)
			return fn(fs, c, d.Ino, name)
		}
	}
	var cases []permCase
	for _, op := range []struct {
		name string
		fn   mkfn
	}{{"create", create}, {"mkdir", mkdir}, {"symlink", symlink}, {"link", link}} {
		cases = append(cases,
			permCase{op.name + " in 0755", in(0o755, "n", op.fn), want{0, E, E, 0}},
			permCase{op.name + " in 0775", in(0o775, "n", op.fn), want{0, 0, E, 0}},
			permCase{op.name + " in 0777", in(0o777, "n", op.fn), want{0, 0, 0, 0}},
			permCase{op.name + " in 0333", in(0o333, "n", op.fn), want{0, 0, 0, 0}},
			permCase{op.name + " in 0555", in(0o555, "n", op.fn), allBut0(E)},
			permCase{op.name + " in 0666", in(0o666, "n", op.fn), allBut0(E)},
			// An existing name: EEXIST before the write check, but not
			// before the search check.
			permCase{op.name + " existing in 0555", in(0o555, "f", op.fn), want{syscall.EEXIST, syscall.EEXIST, syscall.EEXIST, syscall.EEXIST}},
			permCase{op.name + " existing in 0666", in(0o666, "f", op.fn), want{E, E, E, syscall.EEXIST}},
		)
	}
	runPermCases(t, cases)
}

// Removing entries: search, then ENOENT, then write, then the sticky rule,
// then the type, then ENOTEMPTY.
func TestPermUnlinkRmdir(t *testing.T) {
	const E, P = syscall.EACCES, syscall.EPERM
	// In /d (perm, owned by dirUID) the entry "v": a file or a directory
	// owned by victimUID.
	rm := func(perm uint32, dirUID, victimUID uint32, kind byte, rmdir bool, name string) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			d, _ := scene(t, fs, 0o777, 0o644)
			v := mk(t, fs, d.Ino, "v", kind, 0o755)
			chown(t, fs, v.Ino, victimUID, groupGID)
			chown(t, fs, d.Ino, dirUID, groupGID)
			if kind == 'd' && name == "full" {
				w := mk(t, fs, d.Ino, "full", 'd', 0o777)
				mk(t, fs, w.Ino, "x", 'f', 0o644)
				chown(t, fs, w.Ino, victimUID, groupGID)
			}
			chmod(t, fs, d.Ino, perm)
			if rmdir {
				return fs.Rmdir(ctx, c, d.Ino, name)
			}
			return fs.Unlink(ctx, c, d.Ino, name)
		}
	}
	const owner, group, other = 1000, 1001, 1002
	runPermCases(t, []permCase{
		{"unlink in 0755", rm(0o755, owner, owner, 'f', false, "v"), want{0, E, E, 0}},
		{"unlink in 0775", rm(0o775, owner, owner, 'f', false, "v"), want{0, 0, E, 0}},
		{"unlink in 0757", rm(0o757, owner, owner, 'f', false, "v"), want{0, E, 0, 0}},
		{"unlink in 0333", rm(0o333, owner, owner, 'f', false, "v"), want{0, 0, 0, 0}},
		{"unlink in 0555", rm(0o555, owner, owner, 'f', false, "v"), allBut0(E)},
		{"unlink in 0666", rm(0o666, owner, owner, 'f', false, "v"), allBut0(E)},
		{"unlink missing in 0555", rm(0o555, owner, owner, 'f', false, "nope"), want{syscall.ENOENT, syscall.ENOENT, syscall.ENOENT, syscall.ENOENT}},
		{"unlink missing in 0666", rm(0o666, owner, owner, 'f', false, "nope"), want{E, E, E, syscall.ENOENT}},
		{"unlink dir in 0555", rm(0o555, owner, owner, 'd', false, "v"), want{E, E, E, syscall.EISDIR}},
		{"rmdir in 0755", rm(0o755, owner, owner, 'd', true, "v"), want{0, E, E, 0}},
		{"rmdir in 0775", rm(0o775, owner, owner, 'd', true, "v"), want{0, 0, E, 0}},
		{"rmdir in 0555", rm(0o555, owner, owner, 'd', true, "v"), allBut0(E)},
		{"rmdir file in 0555", rm(0o555, owner, owner, 'f', true, "v"), want{E, E, E, syscall.ENOTDIR}},
		{"rmdir non-empty in 0555", rm(0o555, owner, owner, 'd', true, "full"), want{E, E, E, syscall.ENOTEMPTY}},
		// Sticky: the file's owner, the directory's owner or root.
		{"unlink sticky, dir and file the owner's", rm(0o1777, owner, owner, 'f', false, "v"), want{0, P, P, 0}},
		{"unlink sticky, file the member's", rm(0o1777, owner, group, 'f', false, "v"), want{0, 0, P, 0}},
		{"unlink sticky, dir the other's", rm(0o1777, other, owner, 'f', false, "v"), want{0, P, 0, 0}},
		{"unlink sticky 1775, file the other's", rm(0o1775, owner, other, 'f', false, "v"), want{0, P, E, 0}},
		{"rmdir sticky, dir the member's", rm(0o1777, owner, group, 'd', true, "v"), want{0, 0, P, 0}},
		{"rmdir sticky non-empty", rm(0o1777, owner, group, 'd', true, "full"), want{syscall.ENOTEMPTY, syscall.ENOTEMPTY, P, syscall.ENOTEMPTY}},
		{"unlink sticky dir in sticky", rm(0o1777, other, other, 'd', false, "v"), want{P, P, syscall.EISDIR, syscall.EISDIR}},
	})
}

// Rename: search on both directories; removing the source (write on its
// directory, sticky); adding to the destination (write) or removing what
// is there (write, sticky); a directory that changes parent needs write
// on itself.
func TestPermRename(t *testing.T) {
	const E, P = syscall.EACCES, syscall.EPERM
	const owner, group, other = 1000, 1001, 1002
	type sc struct {
		srcPerm, dstPerm uint32 // /s and /t
		srcUID, dstUID   uint32 // owners of /s and /t
		kind             byte   // what /s/a is
		aPerm            uint32
		aUID             uint32
		existing         byte // what /t/b is: 0 none, 'f' or 'd'
		bUID             uint32
		same             bool // rename /s/a to /s/b instead of /t/b
	}
	ren := func(s sc) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			sd := mk(t, fs, inode.RootIno, "s", 'd', 0o777)
			td := mk(t, fs, inode.RootIno, "t", 'd', 0o777)
			a := mk(t, fs, sd.Ino, "a", s.kind, s.aPerm)
			chown(t, fs, a.Ino, s.aUID, groupGID)
			chmod(t, fs, a.Ino, s.aPerm)
			dst := td
			if s.same {
				dst = sd
			}
			if s.existing != 0 {
				b := mk(t, fs, dst.Ino, "b", s.existing, 0o755)
				chown(t, fs, b.Ino, s.bUID, groupGID)
			}
			chown(t, fs, sd.Ino, s.srcUID, groupGID)
			chown(t, fs, td.Ino, s.dstUID, groupGID)
			chmod(t, fs, sd.Ino, s.srcPerm)
			chmod(t, fs, td.Ino, s.dstPerm)
			return fs.Rename(ctx, c, sd.Ino, "a", dst.Ino, "b")
		}
	}
	f := func(s sc) sc { s.kind, s.aPerm, s.aUID = 'f', 0o644, owner; return s }
	runPermCases(t, []permCase{
		{"file 0755 to 0755", ren(f(sc{srcPerm: 0o755, dstPerm: 0o755, srcUID: owner, dstUID: owner})), want{0, E, E, 0}},
		{"file 0775 to 0775", ren(f(sc{srcPerm: 0o775, dstPerm: 0o775, srcUID: owner, dstUID: owner})), want{0, 0, E, 0}},
		{"file 0777 to 0555", ren(f(sc{srcPerm: 0o777, dstPerm: 0o555, srcUID: owner, dstUID: owner})), allBut0(E)},
		{"file 0555 to 0777", ren(f(sc{srcPerm: 0o555, dstPerm: 0o777, srcUID: owner, dstUID: owner})), allBut0(E)},
		{"file 0777 to 0666", ren(f(sc{srcPerm: 0o777, dstPerm: 0o666, srcUID: owner, dstUID: owner})), allBut0(E)},
		{"file 0666 to 0777", ren(f(sc{srcPerm: 0o666, dstPerm: 0o777, srcUID: owner, dstUID: owner})), allBut0(E)},
		{"file 0333 to 0333", ren(f(sc{srcPerm: 0o333, dstPerm: 0o333, srcUID: owner, dstUID: owner})), want{0, 0, 0, 0}},
		{"file over file, 0777 to 0555", ren(f(sc{srcPerm: 0o777, dstPerm: 0o555, srcUID: owner, dstUID: owner, existing: 'f', bUID: owner})), allBut0(E)},
		{"file over dir, 0777 to 0555", ren(f(sc{srcPerm: 0o777, dstPerm: 0o555, srcUID: owner, dstUID: owner, existing: 'd', bUID: owner})), want{E, E, E, syscall.EISDIR}},
		// Sticky source: the file's owner, its directory's owner, root.
		{"from sticky, the owner's file", ren(f(sc{srcPerm: 0o1777, dstPerm: 0o777, srcUID: other, dstUID: owner})), want{0, P, 0, 0}},
		{"from sticky, the member's file", ren(sc{srcPerm: 0o1777, dstPerm: 0o777, srcUID: owner, dstUID: owner, kind: 'f', aPerm: 0o644, aUID: group}), want{0, 0, P, 0}},
		// Sticky destination: only what is there counts.
		{"to sticky, nothing there", ren(f(sc{srcPerm: 0o777, dstPerm: 0o1777, srcUID: owner, dstUID: owner})), want{0, 0, 0, 0}},
		{"to sticky, over the owner's file", ren(f(sc{srcPerm: 0o777, dstPerm: 0o1777, srcUID: owner, dstUID: other, existing: 'f', bUID: owner})), want{0, P, 0, 0}},
		{"to sticky, over the member's file", ren(f(sc{srcPerm: 0o777, dstPerm: 0o1777, srcUID: owner, dstUID: owner, existing: 'f', bUID: group})), want{0, 0, P, 0}},
		// A directory changing parent needs write on itself; within one
		// parent it does not.
		{"dir 0555 to another parent", ren(sc{srcPerm: 0o777, dstPerm: 0o777, srcUID: owner, dstUID: owner, kind: 'd', aPerm: 0o555, aUID: owner}), allBut0(E)},
		{"dir 0775 to another parent", ren(sc{srcPerm: 0o777, dstPerm: 0o777, srcUID: owner, dstUID: owner, kind: 'd', aPerm: 0o775, aUID: owner}), want{0, 0, E, 0}},
		{"dir 0555 in its parent", ren(sc{srcPerm: 0o777, srcUID: owner, dstPerm: 0o777, dstUID: owner, kind: 'd', aPerm: 0o555, aUID: owner, same: true}), want{0, 0, 0, 0}},
		{"dir over a dir, 0777 to 0555", ren(sc{srcPerm: 0o777, dstPerm: 0o555, srcUID: owner, dstUID: owner, kind: 'd', aPerm: 0o777, aUID: owner, existing: 'd', bUID: owner}), want{E, E, E, 0}},
	})

	// Renaming onto another link of the same inode does nothing and checks
	// nothing but search (as Linux, which returns before may_delete).
	fs, _ := inodetest.New(t)
	d, fa := scene(t, fs, 0o777, 0o644)
	wantErr(t, "link", fs.Link(ctx, pRoot, d.Ino, "g", fa.Ino), 0)
	chmod(t, fs, d.Ino, 0o555)
	wantErr(t, "rename onto own link", fs.Rename(ctx, pOther, d.Ino, "f", d.Ino, "g"), 0)
	chmod(t, fs, d.Ino, 0o444)
	wantErr(t, "rename onto own link, no search", fs.Rename(ctx, pOther, d.Ino, "f", d.Ino, "g"), syscall.EACCES)
	// Into its own subtree: EINVAL comes before the permission checks.
	chmod(t, fs, d.Ino, 0o555)
	sub := mk(t, fs, d.Ino, "sub", 'd', 0o555)
	wantErr(t, "rename into subtree", fs.Rename(ctx, pOther, inode.RootIno, "d", sub.Ino, "x"), syscall.EINVAL)
}

// Hard links need nothing of the target (no fs.protected_hardlinks).
func TestPermLinkTarget(t *testing.T) {
	fs, _ := inodetest.New(t)
	_, f := scene(t, fs, 0o755, 0o000)
	o := mk(t, fs, inode.RootIno, "o", 'd', 0o777)
	wantErr(t, "link a 0000 file of another user", fs.Link(ctx, pOther, o.Ino, "mine", f.Ino), 0)
}

// SetAttr: chmod, chown, chgrp, times and size, each as every caller.
func TestPermSetAttr(t *testing.T) {
	const E, P = syscall.EACCES, syscall.EPERM
	set := func(perm uint32, sa inode.SetAttr) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			_, f := scene(t, fs, 0o755, perm)
			_, err := fs.SetAttr(ctx, c, f.Ino, sa)
			return err
		}
	}
	setGID := func(gid uint32, sa inode.SetAttr) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			_, f := scene(t, fs, 0o755, 0o644)
			chown(t, fs, f.Ino, ownerUID, gid)
			_, err := fs.SetAttr(ctx, c, f.Ino, sa)
			return err
		}
	}
	ts := inode.Timespec{Sec: 5}
	runPermCases(t, []permCase{
		{"chmod", set(0o644, inode.SetAttr{Mask: inode.SetMode, Mode: 0o600}), want{0, P, P, 0}},
		{"chmod 0000 file", set(0o000, inode.SetAttr{Mask: inode.SetMode, Mode: 0o600}), want{0, P, P, 0}},
		{"chown to another uid", set(0o644, inode.SetAttr{Mask: inode.SetUID, UID: 1002}), want{P, P, P, 0}},
		{"chown to the same uid", set(0o644, inode.SetAttr{Mask: inode.SetUID, UID: ownerUID}), want{0, P, P, 0}},
		{"chgrp to the same gid", set(0o644, inode.SetAttr{Mask: inode.SetGID, GID: groupGID}), want{0, P, P, 0}},
		{"chgrp to the owner's primary group", setGID(999, inode.SetAttr{Mask: inode.SetGID, GID: 100}), want{0, P, P, 0}},
		{"chgrp to the owner's supplementary group", set(0o644, inode.SetAttr{Mask: inode.SetGID, GID: 600}), want{0, P, P, 0}},
		{"chgrp to a group not the owner's", set(0o644, inode.SetAttr{Mask: inode.SetGID, GID: 300}), want{P, P, P, 0}},
		{"chown uid and gid", set(0o644, inode.SetAttr{Mask: inode.SetUID | inode.SetGID, UID: ownerUID, GID: groupGID}), want{0, P, P, 0}},
		{"set mtime", set(0o666, inode.SetAttr{Mask: inode.SetMtime, Mtime: ts}), want{0, P, P, 0}},
		{"set atime", set(0o666, inode.SetAttr{Mask: inode.SetAtime, Atime: ts}), want{0, P, P, 0}},
		{"set crtime", set(0o666, inode.SetAttr{Mask: inode.SetCrtime, Crtime: ts}), want{0, P, P, 0}},
		{"set both to now, writable by the group", set(0o664, inode.SetAttr{Mask: inode.SetAtimeNow | inode.SetMtimeNow}), want{0, 0, E, 0}},
		{"set both to now, 0000", set(0o000, inode.SetAttr{Mask: inode.SetAtimeNow | inode.SetMtimeNow}), want{0, E, E, 0}},
		{"set mtime to now only", set(0o666, inode.SetAttr{Mask: inode.SetMtimeNow}), want{0, P, P, 0}},
		{"set atime now, mtime explicit", set(0o666, inode.SetAttr{Mask: inode.SetAtimeNow | inode.SetMtime, Mtime: ts}), want{0, P, P, 0}},
		{"truncate 0644", set(0o644, inode.SetAttr{Mask: inode.SetSize, Size: 0}), want{0, E, E, 0}},
		{"truncate 0464", set(0o464, inode.SetAttr{Mask: inode.SetSize, Size: 0}), want{E, 0, E, 0}},
		{"truncate 0000", set(0o000, inode.SetAttr{Mask: inode.SetSize, Size: 9}), want{E, E, E, 0}},
		{"mtime and now", set(0o666, inode.SetAttr{Mask: inode.SetMtime | inode.SetMtimeNow}), want{syscall.EINVAL, syscall.EINVAL, syscall.EINVAL, syscall.EINVAL}},
		{"nothing", set(0o000, inode.SetAttr{}), want{0, 0, 0, 0}},
	})
	// A failed change changes nothing, ctime included.
	fs, _ := inodetest.New(t)
	_, f := scene(t, fs, 0o755, 0o644)
	before := attr(t, fs, f.Ino)
	_, err := fs.SetAttr(ctx, pOther, f.Ino, inode.SetAttr{Mask: inode.SetMode | inode.SetMtime, Mode: 0o777})
	wantErr(t, "chmod by other", err, syscall.EPERM)
	if got := attr(t, fs, f.Ino); got != before {
		t.Fatalf("after a refused setattr: %+v, was %+v", got, before)
	}
	// Now is the server's clock, for both times.
	a, err := fs.SetAttr(ctx, pOwner, f.Ino, inode.SetAttr{Mask: inode.SetAtimeNow | inode.SetMtimeNow})
	wantErr(t, "touch", err, 0)
	if a.Atime != a.Mtime || a.Mtime != a.Ctime || !after(a.Mtime, before.Mtime) {
		t.Fatalf("touch: %+v (before %+v)", a, before)
	}
}

// The setuid and setgid bits: cleared by a change of data or size by
// anyone but root, by a change of owner or group by anyone; setgid only
// when group execute is set. chmod drops setgid for a caller outside the
// file's group.
func TestPermSetIDBits(t *testing.T) {
	type step struct {
		name  string
		perm  uint32 // the file's bits before
		c     inode.Caller
		do    func(t *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error
		after uint32 // its bits after
	}
	write := func(_ *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
		return fs.Write(ctx, c, f.Ino, []byte("z"), 0)
	}
	truncate := func(_ *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
		_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 0})
		return err
	}
	fallocate := func(_ *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
		return fs.Fallocate(ctx, c, f.Ino, 0, 0, 100)
	}
	copyInto := func(t *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
		src := mk(t, fs, inode.RootIno, "src", 'f', 0o644)
		wantErr(t, "write src", fs.Write(ctx, pRoot, src.Ino, []byte("data"), 0), 0)
		_, err := fs.CopyRange(ctx, c, src.Ino, 0, f.Ino, 0, 4)
		return err
	}
	chgrp := func(gid uint32) func(*testing.T, *inode.FS, inode.Caller, inode.Attr) error {
		return func(_ *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
			_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetGID, GID: gid})
			return err
		}
	}
	chmodTo := func(perm uint32) func(*testing.T, *inode.FS, inode.Caller, inode.Attr) error {
		return func(_ *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
			_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetMode, Mode: perm})
			return err
		}
	}
	chownAndChmod := func(_ *testing.T, fs *inode.FS, c inode.Caller, f inode.Attr) error {
		_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetUID | inode.SetMode, UID: 5, Mode: 0o6755})
		return err
	}
	for _, s := range []step{
		{"write by group member", 0o6775, pGroup, write, 0o0775},
		{"write by group member, setgid without group x", 0o6764, pGroup, write, 0o2764},
		{"write by owner", 0o4755, pOwner, write, 0o0755},
		{"write by root", 0o6775, pRoot, write, 0o6775},
		{"truncate by owner", 0o6755, pOwner, truncate, 0o0755},
		{"truncate by root", 0o6755, pRoot, truncate, 0o6755},
		{"fallocate by owner", 0o6755, pOwner, fallocate, 0o0755},
		{"copy into, by owner", 0o4755, pOwner, copyInto, 0o0755},
		{"copy into, by root", 0o4755, pRoot, copyInto, 0o4755},
		{"chgrp by owner", 0o6755, pOwner, chgrp(groupGID), 0o0755},
		{"chgrp by owner, setgid without group x", 0o6745, pOwner, chgrp(groupGID), 0o2745},
		{"chgrp by root", 0o6755, pRoot, chgrp(7), 0o0755},
		{"chown with explicit mode, by root", 0o6755, pRoot, chownAndChmod, 0o6755},
		{"chmod setgid by owner in the group", 0o644, pOwner, chmodTo(0o2755), 0o2755},
		{"chmod setgid by root", 0o644, pRoot, chmodTo(0o2755), 0o2755},
		{"chmod by owner, group not the owner's", 0o644, pOwner, chmodTo(0o6755), 0o4755},
	} {
		t.Run(s.name, func(t *testing.T) {
			fs, _ := inodetest.New(t)
			_, f := scene(t, fs, 0o777, s.perm)
			if s.name == "chmod by owner, group not the owner's" {
				chown(t, fs, f.Ino, ownerUID, 999)
			}
			wantErr(t, s.name, s.do(t, fs, s.c, f), 0)
			if got := attr(t, fs, f.Ino).Mode & inode.ModePerm; got != s.after {
				t.Fatalf("mode %#o, want %#o", got, s.after)
			}
		})
	}
	// A directory keeps its bits through a change of owner.
	fs, _ := inodetest.New(t)
	d, _ := scene(t, fs, 0o6755, 0o644)
	chown(t, fs, d.Ino, 5, 6)
	if got := attr(t, fs, d.Ino).Mode & inode.ModePerm; got != 0o6755 {
		t.Fatalf("directory mode after chown %#o", got)
	}
}

// File capabilities (security.capability) go with any change of a regular
// file's data, size or owner, whoever makes it (root too), in the same
// commit; other attributes stay, and a change of mode or times keeps them.
func TestPermCapsDropped(t *testing.T) {
	chmod := func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
		_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetMode, Mode: 0o755})
		return err
	}
	for _, tc := range []struct {
		name string
		c    inode.Caller
		do   func(fs *inode.FS, c inode.Caller, f inode.Attr) error
		kept bool
	}{
		{"write by owner", pOwner, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			return fs.Write(ctx, c, f.Ino, []byte("z"), 0)
		}, false},
		{"write by root", pRoot, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			return fs.Write(ctx, c, f.Ino, []byte("z"), 3)
		}, false},
		{"truncate by root", pRoot, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 0})
			return err
		}, false},
		{"fallocate by owner", pOwner, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			return fs.Fallocate(ctx, c, f.Ino, 0, 0, 100)
		}, false},
		{"copy into, by root", pRoot, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			src := mk(t, fs, inode.RootIno, "src", 'f', 0o644)
			wantErr(t, "write src", fs.Write(ctx, pRoot, src.Ino, []byte("data"), 0), 0)
			_, err := fs.CopyRange(ctx, c, src.Ino, 0, f.Ino, 0, 4)
			return err
		}, false},
		{"chown by root", pRoot, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			_, err := fs.SetAttr(ctx, c, f.Ino, inode.SetAttr{Mask: inode.SetUID, UID: ownerUID})
			return err
		}, false},
		{"chmod by owner", pOwner, chmod, true},
		{"read by owner", pOwner, func(fs *inode.FS, c inode.Caller, f inode.Attr) error {
			_, err := fs.Read(ctx, c, f.Ino, make([]byte, 4), 0)
			return err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, _ := inodetest.New(t)
			_, f := scene(t, fs, 0o777, 0o664)
			wantErr(t, "write", fs.Write(ctx, pRoot, f.Ino, []byte("program"), 0), 0)
			wantErr(t, "setcap", fs.SetXattr(ctx, pRoot, f.Ino, inode.XattrCaps, []byte("caps"), 0), 0)
			wantErr(t, "set user.a", fs.SetXattr(ctx, pRoot, f.Ino, "user.a", []byte("1"), 0), 0)
			wantErr(t, tc.name, tc.do(fs, tc.c, f), 0)
			_, err := fs.GetXattr(ctx, pRoot, f.Ino, inode.XattrCaps)
			if tc.kept {
				wantErr(t, "caps kept", err, 0)
			} else {
				wantErr(t, "caps dropped", err, syscall.ENODATA)
			}
			v, err := fs.GetXattr(ctx, pRoot, f.Ino, "user.a")
			if err != nil || string(v) != "1" {
				t.Fatalf("user.a after %s: %q, %v", tc.name, v, err)
			}
		})
	}
	// A directory keeps them through a change of owner.
	fs, _ := inodetest.New(t)
	d, _ := scene(t, fs, 0o755, 0o644)
	wantErr(t, "setcap dir", fs.SetXattr(ctx, pRoot, d.Ino, inode.XattrCaps, []byte("caps"), 0), 0)
	chown(t, fs, d.Ino, 5, 6)
	if _, err := fs.GetXattr(ctx, pRoot, d.Ino, inode.XattrCaps); err != nil {
		t.Fatalf("directory caps after chown: %v", err)
	}
}

// Setgid directories: new entries take the directory's group, new
// directories its setgid bit too; a new file asking for setgid with group
// execute loses it unless its creator is in that group or root.
func TestPermSetgidDirectory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       inode.Caller
		kind    byte
		perm    uint32
		wantGID uint32
		want    uint32
	}{
		{"file by member", pGroup, 'f', 0o644, groupGID, 0o644},
		{"file by other", pOther, 'f', 0o644, groupGID, 0o644},
		{"dir by other", pOther, 'd', 0o755, groupGID, 0o2755},
		{"symlink by other", pOther, 'l', 0, groupGID, 0o777},
		{"setgid file by member", pGroup, 'f', 0o2755, groupGID, 0o2755},
		{"setgid file by other", pOther, 'f', 0o2755, groupGID, 0o0755},
		{"setgid file without group x by other", pOther, 'f', 0o2745, groupGID, 0o2745},
		{"setgid file by root", pRoot, 'f', 0o2755, groupGID, 0o2755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, _ := inodetest.New(t)
			d := mk(t, fs, inode.RootIno, "d", 'd', 0o2777)
			var a inode.Attr
			var err error
			switch tc.kind {
			case 'f':
				a, err = fs.Create(ctx, tc.c, d.Ino, "n", tc.perm)
			case 'd':
				a, err = fs.Mkdir(ctx, tc.c, d.Ino, "n", tc.perm)
			case 'l':
				a, err = fs.Symlink(ctx, tc.c, d.Ino, "n", "t")
			}
			wantErr(t, "create", err, 0)
			if a.UID != tc.c.UID || a.GID != tc.wantGID || a.Mode&inode.ModePerm != tc.want {
				t.Fatalf("new entry %d:%d mode %#o, want %d:%d mode %#o", a.UID, a.GID, a.Mode&inode.ModePerm, tc.c.UID, tc.wantGID, tc.want)
			}
		})
	}
	// Outside a setgid directory: the caller's own ids.
	fs, _ := inodetest.New(t)
	d := mk(t, fs, inode.RootIno, "d", 'd', 0o777)
	a, err := fs.Mkdir(ctx, pGroup, d.Ino, "n", 0o2755)
	wantErr(t, "mkdir", err, 0)
	if a.UID != pGroup.UID || a.GID != pGroup.GID || a.Mode&inode.ModePerm != 0o2755 {
		t.Fatalf("new dir %d:%d %#o", a.UID, a.GID, a.Mode&inode.ModePerm)
	}
}

// Open checks the access it asks for, as open(2).
func TestPermOpen(t *testing.T) {
	const E = syscall.EACCES
	open := func(kind byte, perm uint32, acc inode.Access) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			a := mk(t, fs, inode.RootIno, "n", kind, perm)
			_, err := fs.OpenInode(ctx, c, a.Ino, acc, false)
			if err == nil {
				wantErr(t, "close", fs.CloseInode(ctx, a.Ino), 0)
			}
			return err
		}
	}
	rw := inode.MayRead | inode.MayWrite
	runPermCases(t, []permCase{
		{"read 0400", open('f', 0o400, inode.MayRead), want{0, E, E, 0}},
		{"write 0400", open('f', 0o400, inode.MayWrite), allBut0(E)},
		{"read-write 0640", open('f', 0o640, rw), want{0, E, E, 0}},
		{"read-write 0460", open('f', 0o460, rw), want{E, 0, E, 0}},
		{"read-write 0066", open('f', 0o066, rw), want{E, 0, 0, 0}},
		{"read dir 0700", open('d', 0o700, inode.MayRead), want{0, E, E, 0}},
		{"write dir 0777", open('d', 0o777, inode.MayWrite), want{syscall.EISDIR, syscall.EISDIR, syscall.EISDIR, syscall.EISDIR}},
		{"symlink", open('l', 0, rw), want{0, 0, 0, 0}},
	})
}

// Data calls by inode number, without a handle: each checks the caller.
func TestPermDataCalls(t *testing.T) {
	const E = syscall.EACCES
	data := func(perm uint32, fn func(fs *inode.FS, c inode.Caller, f, g inode.Attr) error) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			d, f := scene(t, fs, 0o777, perm)
			g := mk(t, fs, d.Ino, "g", 'f', 0o666) // writable by anyone
			return fn(fs, c, f, g)
		}
	}
	seek := func(fs *inode.FS, c inode.Caller, f, _ inode.Attr) error {
		_, err := fs.Seek(ctx, c, f.Ino, 0, true)
		return err
	}
	fallocate := func(fs *inode.FS, c inode.Caller, f, _ inode.Attr) error {
		return fs.Fallocate(ctx, c, f.Ino, 0, 0, 10)
	}
	copyFrom := func(fs *inode.FS, c inode.Caller, f, g inode.Attr) error {
		_, err := fs.CopyRange(ctx, c, f.Ino, 0, g.Ino, 0, 1)
		return err
	}
	copyTo := func(fs *inode.FS, c inode.Caller, f, g inode.Attr) error {
		_, err := fs.CopyRange(ctx, c, g.Ino, 0, f.Ino, 0, 1)
		return err
	}
	runPermCases(t, []permCase{
		{"seek 0400", data(0o400, seek), want{0, E, E, 0}},
		{"seek 0200", data(0o200, seek), allBut0(E)},
		{"fallocate 0200", data(0o200, fallocate), want{0, E, E, 0}},
		{"fallocate 0444", data(0o444, fallocate), allBut0(E)},
		{"copy from 0440", data(0o440, copyFrom), want{0, 0, E, 0}},
		{"copy to 0220", data(0o220, copyTo), want{0, 0, E, 0}},
		{"copy to 0444", data(0o444, copyTo), allBut0(E)},
	})
}

// Extended attributes: user.* follows the file's permissions; trusted.*,
// security.* and system.* are root's; user.* lives only on files and
// directories; a sticky directory's user.* only its owner changes.
func TestPermXattrs(t *testing.T) {
	const E, P, N = syscall.EACCES, syscall.EPERM, syscall.ENODATA
	// The scene: /d/f (perm) and /d/l (a symlink), each with user.u, and
	// as many trusted.t, security.s and system.y, set by root.
	xs := func(perm uint32, fn func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error) func(*testing.T, *inode.FS, inode.Caller) error {
		return func(t *testing.T, fs *inode.FS, c inode.Caller) error {
			d, f := scene(t, fs, 0o777, 0o666)
			l := mk(t, fs, d.Ino, "l", 'l', 0)
			for _, n := range []string{"user.u", "trusted.t", "security.s", "system.y"} {
				wantErr(t, "set "+n, fs.SetXattr(ctx, pRoot, f.Ino, n, []byte("v"), 0), 0)
				if n != "user.u" {
					wantErr(t, "set "+n+" on symlink", fs.SetXattr(ctx, pRoot, l.Ino, n, []byte("v"), 0), 0)
				}
			}
			chmod(t, fs, f.Ino, perm)
			return fn(fs, c, f, l)
		}
	}
	get := func(name string, onLink bool) func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
		return func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
			ino := f.Ino
			if onLink {
				ino = l.Ino
			}
			_, err := fs.GetXattr(ctx, c, ino, name)
			return err
		}
	}
	set := func(name string, onLink bool) func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
		return func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
			ino := f.Ino
			if onLink {
				ino = l.Ino
			}
			return fs.SetXattr(ctx, c, ino, name, []byte("w"), 0)
		}
	}
	remove := func(name string) func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
		return func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
			return fs.RemoveXattr(ctx, c, f.Ino, name)
		}
	}
	list := func(fs *inode.FS, c inode.Caller, f, l inode.Attr) error {
		_, err := fs.ListXattr(ctx, c, f.Ino)
		return err
	}
	runPermCases(t, []permCase{
		{"get user 0600", xs(0o600, get("user.u", false)), want{0, E, E, 0}},
		{"get user 0040", xs(0o040, get("user.u", false)), want{E, 0, E, 0}},
		{"get user 0004", xs(0o004, get("user.u", false)), want{E, E, 0, 0}},
		{"set user 0644", xs(0o644, set("user.u", false)), want{0, E, E, 0}},
		{"set user 0666", xs(0o666, set("user.u", false)), want{0, 0, 0, 0}},
		{"remove user 0464", xs(0o464, remove("user.u")), want{E, 0, E, 0}},
		{"list 0600", xs(0o600, list), want{0, E, E, 0}},
		{"list 0000", xs(0o000, list), allBut0(E)},
		{"get trusted", xs(0o666, get("trusted.t", false)), allBut0(N)},
		{"set trusted", xs(0o666, set("trusted.t", false)), allBut0(P)},
		{"remove trusted", xs(0o666, remove("trusted.t")), allBut0(P)},
		{"get security", xs(0o666, get("security.s", false)), allBut0(N)},
		{"set security", xs(0o666, set("security.s", false)), allBut0(P)},
		{"remove security", xs(0o666, remove("security.s")), allBut0(P)},
		{"get system", xs(0o666, get("system.y", false)), allBut0(N)},
		{"set system", xs(0o666, set("system.y", false)), allBut0(P)},
		{"get trusted, missing", xs(0o666, get("trusted.none", false)), want{N, N, N, N}},
		{"set user on symlink", xs(0o666, set("user.u", true)), want{P, P, P, P}},
		{"get user on symlink", xs(0o666, get("user.u", true)), want{N, N, N, N}},
		{"get trusted on symlink", xs(0o666, get("trusted.t", true)), allBut0(N)},
		{"set trusted on symlink", xs(0o666, set("trusted.t", true)), allBut0(P)},
	})

	// Lists leave out what the caller may not read.
	fs, _ := inodetest.New(t)
	d, f := scene(t, fs, 0o777, 0o644)
	for _, n := range []string{"user.u", "trusted.t", "security.s", "system.y"} {
		wantErr(t, "set "+n, fs.SetXattr(ctx, pRoot, f.Ino, n, []byte("v"), 0), 0)
	}
	for _, c := range []struct {
		c    inode.Caller
		want []string
	}{
		{pOther, []string{"user.u"}},
		{pRoot, []string{"security.s", "system.y", "trusted.t", "user.u"}},
	} {
		got, err := fs.ListXattr(ctx, c.c, f.Ino)
		wantErr(t, "list", err, 0)
		if !slices.Equal(got, c.want) {
			t.Fatalf("list as %d: %q, want %q", c.c.UID, got, c.want)
		}
	}
	// A sticky directory's user.* only its owner or root changes, even
	// with write permission.
	chmod(t, fs, d.Ino, 0o1777)
	for _, c := range []struct {
		c    inode.Caller
		want syscall.Errno
	}{{pOwner, 0}, {pGroup, syscall.EPERM}, {pOther, syscall.EPERM}, {pRoot, 0}} {
		wantErr(t, fmt.Sprintf("set user.* of sticky dir as %d", c.c.UID), fs.SetXattr(ctx, c.c, d.Ino, "user.d", []byte("v"), 0), c.want)
		_, err := fs.GetXattr(ctx, c.c, d.Ino, "user.none")
		wantErr(t, "get user.* of sticky dir", err, syscall.ENODATA)
	}
}
