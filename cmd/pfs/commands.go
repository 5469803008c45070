package main

import (
	"errors"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// lsEntry is one line of ls output.
type lsEntry struct {
	name   string
	st     client.Stat
	target string // symlink target (-l)
}

// cmdLs lists directories, or names files, like ls(1). Directory entries
// are sorted by name; "." and ".." are left out.
func cmdLs(s *session, f cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	long := f.on('l')
	if len(args) == 0 {
		args = []string{"/"}
	}
	var files []lsEntry
	type dir struct {
		name string
		ino  uint64
	}
	var dirs []dir
	for _, a := range args {
		var st client.Stat
		var err error
		if long {
			st, err = m.GetStatPath(s.ctx, a)
		} else {
			_, st, err = s.resolve(m, a)
		}
		if err != nil {
			s.fail("ls", a, err)
			continue
		}
		if isDir(st) {
			dirs = append(dirs, dir{a, st.Ino})
			continue
		}
		e := lsEntry{name: a, st: st}
		if long && isSymlink(st) {
			if e.target, err = m.ReadSymlink(s.ctx, st.Ino); err != nil {
				s.fail("ls", a, err)
				continue
			}
		}
		files = append(files, e)
	}
	printed := false
	if len(files) > 0 {
		writeLs(s.out, files, long)
		printed = true
	}
	for _, d := range dirs {
		entries, ok := s.listDir(m, d.name, d.ino, long)
		if !ok {
			continue
		}
		if printed {
			s.out.WriteString("\n")
		}
		if len(args) > 1 {
			s.out.WriteString(d.name + ":\n")
		}
		writeLs(s.out, entries, long)
		printed = true
	}
}

// listDir reads directory ino (named name) with readdir_plus, sorted by
// name, and for -l the targets of its symlinks.
func (s *session) listDir(m *client.Mount, name string, ino uint64, long bool) ([]lsEntry, bool) {
	var entries []lsEntry
	for e, err := range m.EntriesPlus(s.ctx, ino) {
		if err != nil {
			s.fail("ls", name, err)
			return nil, false
		}
		if e.Name == "." || e.Name == ".." {
			continue
		}
		le := lsEntry{name: e.Name}
		if e.Stat != nil {
			le.st = *e.Stat
		} else if long {
			st, err := m.GetStat(s.ctx, e.Inode)
			if err != nil {
				s.fail("ls", path.Join(remoteName(name), e.Name), err)
				continue
			}
			le.st = st
		}
		entries = append(entries, le)
	}
	slices.SortFunc(entries, func(a, b lsEntry) int { return strings.Compare(a.name, b.name) })
	if long {
		for i := range entries {
			if !isSymlink(entries[i].st) {
				continue
			}
			t, err := m.ReadSymlink(s.ctx, entries[i].st.Ino)
			if err != nil {
				s.fail("ls", path.Join(remoteName(name), entries[i].name), err)
				continue
			}
			entries[i].target = t
		}
	}
	return entries, true
}

// cmdStat shows every attribute of each path (symlinks are not
// followed), a blank line between two paths.
func cmdStat(s *session, _ cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	shown := false
	for _, a := range args {
		st, err := m.GetStatPath(s.ctx, a)
		if err != nil {
			s.fail("stat", a, err)
			continue
		}
		target := ""
		if isSymlink(st) {
			if target, err = m.ReadSymlink(s.ctx, st.Ino); err != nil {
				s.fail("stat", a, err)
				continue
			}
		}
		if shown {
			s.out.WriteString("\n")
		}
		writeStat(s.out, a, st, target)
		shown = true
	}
}

// cmdMkdir creates directories; -p creates missing parents and accepts
// existing directories.
func cmdMkdir(s *session, f cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args {
		if !f.on('p') {
			if _, err := m.MkdirPath(s.ctx, a, 0o755); err != nil {
				s.fail("mkdir", a, err)
			}
			continue
		}
		if err := s.mkdirAll(m, a); err != nil {
			s.fail("mkdir", a, err)
		}
	}
}

// mkdirAll is mkdir -p of p.
func (s *session) mkdirAll(m *client.Mount, p string) error {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return nil
	}
	cur := ""
	parts := strings.Split(clean[1:], "/")
	for i, c := range parts {
		cur += "/" + c
		_, err := m.MkdirPath(s.ctx, cur, 0o755)
		if err == nil {
			continue
		}
		if !errors.Is(err, syscall.EEXIST) {
			return err
		}
		// It exists: fine if it is a directory (or a symlink to one).
		_, st, serr := s.resolve(m, cur)
		if serr == nil && isDir(st) {
			continue
		}
		if i < len(parts)-1 {
			return syscall.ENOTDIR // a parent is not a directory
		}
		return err
	}
	return nil
}

// cmdRm removes files and symlinks; with -r directories too, recursively.
func cmdRm(s *session, f cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args {
		if isRoot(a) {
			s.fail("rm", a, errors.New("refusing to remove the volume root"))
			continue
		}
		if !f.on('r') {
			// The server refuses to unlink a directory (EISDIR).
			if err := m.UnlinkPath(s.ctx, a); err != nil {
				s.fail("rm", a, err)
			}
			continue
		}
		st, err := m.GetStatPath(s.ctx, a)
		if err != nil {
			s.fail("rm", a, err)
			continue
		}
		if !isDir(st) {
			if err := m.UnlinkPath(s.ctx, a); err != nil {
				s.fail("rm", a, err)
			}
			continue
		}
		if !s.removeTree(m, a, st.Ino) {
			continue // the directory cannot be empty
		}
		if err := m.RmdirPath(s.ctx, a); err != nil {
			s.fail("rm", a, err)
		}
	}
}

// removeTree removes everything in directory ino (named name), depth
// first, with the inode forms of unlink and rmdir so that symlinks are
// never followed. It reports errors and returns whether all went well.
func (s *session) removeTree(m *client.Mount, name string, ino uint64) bool {
	entries, err := m.ReadDirAll(s.ctx, ino)
	if err != nil {
		s.fail("rm", name, err)
		return false
	}
	ok := true
	for _, e := range entries {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		child := path.Join(remoteName(name), e.Name)
		if e.Type == client.DTDir {
			if !s.removeTree(m, child, e.Inode) {
				ok = false
				continue
			}
			if err := m.Rmdir(s.ctx, ino, e.Name); err != nil {
				s.fail("rm", child, err)
				ok = false
			}
			continue
		}
		if err := m.Unlink(s.ctx, ino, e.Name); err != nil {
			s.fail("rm", child, err)
			ok = false
		}
	}
	return ok
}

// intoDir returns dst, or dst/base(src) if dst is an existing directory
// (following a symlink), as mv, ln and cp do.
func (s *session) intoDir(m *client.Mount, src, dst string) string {
	if _, st, err := s.resolve(m, dst); err == nil && isDir(st) {
		return path.Join(remoteName(dst), path.Base(remoteName(src)))
	}
	return dst
}

// cmdMv renames SRC to DST, or moves it into DST if DST is a directory.
func cmdMv(s *session, _ cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	src, dst := args[0], s.intoDir(m, args[0], args[1])
	if err := m.RenamePath(s.ctx, src, dst); err != nil {
		s.fail("mv", src+" "+dst, err)
	}
}

// cmdLn makes LINKNAME a hard link to TARGET, or with -s a symlink whose
// target is TARGET (taken as is). A LINKNAME that is a directory gets
// the link inside it.
func cmdLn(s *session, f cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	target, link := args[0], s.intoDir(m, args[0], args[1])
	if f.on('s') {
		if _, err := m.SymlinkPath(s.ctx, link, target); err != nil {
			s.fail("ln", link, err)
		}
		return
	}
	if err := m.LinkPath(s.ctx, target, link); err != nil {
		s.fail("ln", target+" "+link, err)
	}
}
