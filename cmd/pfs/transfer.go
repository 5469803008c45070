package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// progressThreshold is the size above which put and get show progress.
const progressThreshold = 8 << 20

// partialTag marks the temporary names of transfers in progress.
const partialTag = ".pfs-partial-"

// maxName is the longest name of a directory entry, in bytes.
const maxName = 255

// partialName returns a new temporary name for a file to be named base
// when complete: ".base.pfs-partial-XXXXXXXX" (base shortened if the
// name would be too long).
func partialName(base string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := partialTag + hex.EncodeToString(b[:])
	if keep := maxName - 1 - len(suffix); len(base) > keep {
		base = strings.ToValidUTF8(base[:keep], "")
	}
	return "." + base + suffix
}

// openRemoteFile resolves p (following symlinks) and checks that it is
// not a directory.
func (s *session) openRemoteFile(m *client.Mount, p string) (client.Stat, error) {
	_, st, err := s.resolve(m, p)
	if err != nil {
		return st, err
	}
	if isDir(st) {
		return st, syscall.EISDIR
	}
	return st, nil
}

// testHookChunk, if set, is called after each chunk a transfer moves
// (tests interrupt transfers with it).
var testHookChunk func()

// copyOut streams remote file ino to w in MaxIOSize chunks, starting at
// offset 0 until a short read, and returns the bytes copied. Write errors
// are returned as writeError.
func (s *session) copyOut(m *client.Mount, ino uint64, w io.Writer, p *progress) (int64, error) {
	buf := make([]byte, m.MaxIOSize())
	var off int64
	for {
		n, err := m.Read(s.ctx, ino, buf, uint64(off))
		if err != nil {
			return off, err
		}
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return off, &writeError{err}
			}
			off += int64(n)
			p.add(int64(n))
			if testHookChunk != nil {
				testHookChunk()
			}
		}
		if n < len(buf) {
			return off, nil
		}
	}
}

// writeError marks an error of the local side of a transfer.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// readError marks an error reading the local side of a transfer.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// copyIn streams r to remote file ino in MaxIOSize chunks from offset 0.
// r is read ahead, on another goroutine, while the previous chunk is
// written, and an interrupt ends the copy even while r blocks (stdin).
func (s *session) copyIn(m *client.Mount, ino uint64, r io.Reader, p *progress) error {
	type chunk struct {
		b   []byte
		n   int
		err error
	}
	size := int(m.MaxIOSize())
	free := make(chan []byte, 2)
	free <- make([]byte, size)
	free <- make([]byte, size)
	full := make(chan chunk, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			var b []byte
			select {
			case b = <-free:
			case <-done:
				return
			}
			n, err := io.ReadFull(r, b)
			select {
			case full <- chunk{b, n, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var off uint64
	for {
		var c chunk
		select {
		case c = <-full:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
		if c.n > 0 {
			w, err := m.Write(s.ctx, ino, c.b[:c.n], off)
			if err != nil {
				return err
			}
			if w < c.n {
				return io.ErrShortWrite
			}
			off += uint64(c.n)
			p.add(int64(c.n))
			if testHookChunk != nil {
				testHookChunk()
			}
		}
		switch {
		case c.err == io.EOF, c.err == io.ErrUnexpectedEOF:
			return nil
		case c.err != nil:
			return &readError{c.err}
		}
		free <- c.b
	}
}

// failMsg reports "pfs: OP NAME: msg" and marks the run as failed.
func (s *session) failMsg(op, name, msg string) {
	s.fail(op, name, errors.New(msg))
}

// removeRemoteTemp removes the temporary file tmp of a transfer that did
// not complete, even after an interrupt (within cleanupCtx), and reports
// it if it cannot.
func (s *session) removeRemoteTemp(m *client.Mount, op, tmp string) {
	ctx, cancel := s.cleanupCtx()
	defer cancel()
	if err := m.UnlinkPath(ctx, tmp); err != nil && !errors.Is(err, syscall.ENOENT) {
		s.failMsg(op, tmp, "cannot remove this partial file: "+errText(err))
	}
}

// ---- cat ----

// cmdCat writes remote files to stdout.
func cmdCat(s *session, _ cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args {
		if s.ctx.Err() != nil {
			return
		}
		st, err := s.openRemoteFile(m, a)
		if err != nil {
			s.fail("cat", a, err)
			continue
		}
		if _, err := s.copyOut(m, st.Ino, s.stdout, nil); err != nil {
			var we *writeError
			if errors.As(err, &we) {
				s.fail("write", "stdout", err)
				return
			}
			s.fail("cat", a, err)
		}
	}
}

// ---- put ----

// remoteTarget works out the remote file that a file named base goes to
// when dst is the destination: dst itself, or dst/base when dst is a
// directory (base "": stdin, EISDIR). A symlink at the destination is
// followed (the file it names is replaced). existing is the stat of the
// file being replaced, nil if there is none.
func (s *session) remoteTarget(m *client.Mount, dst, base string) (final string, existing *client.Stat, err error) {
	p, st, err := s.resolve(m, dst)
	switch {
	case err == nil && isDir(st):
		if base == "" {
			return dst, nil, syscall.EISDIR
		}
		q := path.Join(remoteName(dst), base)
		p2, st2, err := s.resolve(m, q)
		switch {
		case err == nil && isDir(st2):
			return q, nil, syscall.EISDIR
		case err == nil:
			return p2, &st2, nil
		case errors.Is(err, syscall.ENOENT) && p2 == q:
			return q, nil, nil
		default:
			return q, nil, err
		}
	case err == nil:
		return p, &st, nil
	case errors.Is(err, syscall.ENOENT) && p == dst:
		return dst, nil, nil // nothing there: a new file
	default:
		return dst, nil, err
	}
}

// isDirRemote reports whether remote path p is a directory (following
// symlinks).
func (s *session) isDirRemote(m *client.Mount, p string) bool {
	_, st, err := s.resolve(m, p)
	return err == nil && isDir(st)
}

// cmdPut uploads LOCAL ("-": stdin) to REMOTE (a directory: the file of
// LOCAL's base name in it), creating or replacing it, and flushes it.
// Several LOCALs go into the directory REMOTE; -r uploads directories.
func cmdPut(s *session, f cmdFlags, args []string) {
	srcs, dst := args[:len(args)-1], args[len(args)-1]
	// Local errors first: they need no server.
	infos := make([]os.FileInfo, len(srcs))
	for i, src := range srcs {
		if src == "-" {
			continue
		}
		fi, err := os.Stat(src)
		if err != nil {
			s.fail("put", src, err)
			continue
		}
		if fi.IsDir() && !f.on('r') {
			s.fail("put", src, syscall.EISDIR)
			continue
		}
		infos[i] = fi
	}
	if s.failed && len(srcs) == 1 {
		return
	}
	m, err := s.mount()
	if err != nil {
		return
	}
	dstIsDir := s.isDirRemote(m, dst)
	if len(srcs) > 1 && !dstIsDir {
		s.fail("put", dst, syscall.ENOTDIR)
		return
	}
	for i, src := range srcs {
		if s.ctx.Err() != nil {
			return
		}
		fi := infos[i]
		switch {
		case src == "-":
			s.putStdin(m, dst)
		case fi == nil:
			// reported above
		case fi.IsDir():
			target := dst
			if dstIsDir {
				target = path.Join(remoteName(dst), filepath.Base(src))
			}
			s.putTree(m, src, target, fi)
		default:
			final, existing, err := s.remoteTarget(m, dst, filepath.Base(src))
			if err != nil {
				s.fail("put", final, err)
				continue
			}
			s.putLocalFile(m, src, final, existing)
		}
	}
}

// putStdin uploads stdin to dst.
func (s *session) putStdin(m *client.Mount, dst string) {
	final, existing, err := s.remoteTarget(m, dst, "")
	if err != nil {
		s.fail("put", final, err)
		return
	}
	size := int64(-1)
	if f, ok := s.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	s.putFile(m, s.stdin, size, "-", 0o644, final, existing)
}

// putLocalFile uploads local file local to remote file final (existing:
// the file it replaces, if any).
func (s *session) putLocalFile(m *client.Mount, local, final string, existing *client.Stat) {
	f, err := os.Open(local)
	if err != nil {
		s.fail("put", local, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.fail("put", local, err)
		return
	}
	size := int64(-1)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	s.putFile(m, f, size, local, uint32(fi.Mode().Perm()), final, existing)
}

// putFile uploads r (size bytes, -1 if unknown; named local in errors)
// to remote file final: it writes a temporary file in final's directory,
// flushes it and renames it over final. A new file gets mode; one that
// replaces existing gets existing's mode and owner. On an error or an
// interrupt the temporary file is removed. It reports whether it
// succeeded.
func (s *session) putFile(m *client.Mount, r io.Reader, size int64, local string, mode uint32, final string, existing *client.Stat) bool {
	dir, base := path.Split(remoteName(final))
	tmp := path.Join(dir, partialName(base))
	if existing != nil {
		mode = existing.Mode & 0o7777
	}
	st, err := m.CreatePath(s.ctx, tmp, fillMode(mode))
	if err != nil {
		s.fail("put", final, err)
		return false
	}
	ok := false
	defer func() {
		if !ok {
			s.removeRemoteTemp(m, "put", tmp)
		}
	}()
	if existing != nil && (existing.UID != st.UID || existing.GID != st.GID) {
		if err := m.Chown(s.ctx, st.Ino, int64(existing.UID), int64(existing.GID)); err != nil {
			s.fail("put", final, err)
			return false
		}
	}
	p := s.newProgress(size)
	err = s.copyIn(m, st.Ino, r, p)
	s.endProgress(p)
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			s.fail("put", local, err)
		} else {
			s.fail("put", final, err)
		}
		return false
	}
	if err := s.finalMode(m, st.Ino, mode); err != nil {
		s.fail("put", final, err)
		return false
	}
	if err := m.Flush(s.ctx, st.Ino); err != nil {
		s.fail("put", final, err)
		return false
	}
	if err := m.RenamePath(s.ctx, tmp, final); err != nil {
		s.fail("put", final, err)
		return false
	}
	ok = true
	return true
}

// mkdirRemote creates directory p, writable by its owner while it is
// filled (fillMode), or accepts an existing directory there. It returns
// the new directory's inode (0 for an existing one), to give it its mode
// with finalMode once filled.
func (s *session) mkdirRemote(m *client.Mount, p string, mode uint32) (uint64, error) {
	st, err := m.MkdirPath(s.ctx, p, fillMode(mode))
	if errors.Is(err, syscall.EEXIST) && s.isDirRemote(m, p) {
		return 0, nil
	}
	return st.Ino, err
}

// fillMode is mode with the owner's read, write and search bits: the
// server checks every call against the inode's mode (the calls carry no
// open file, which on Linux keeps the access it was opened with), so a
// file or directory that pfs fills is created open to its owner and gets
// its own mode with finalMode afterwards.
func fillMode(mode uint32) uint32 { return mode | 0o700 }

// finalMode gives ino, created with fillMode(mode) and filled, its mode:
// the owner's bits, and the setuid and setgid bits, which a write by
// anyone but root clears.
func (s *session) finalMode(m *client.Mount, ino uint64, mode uint32) error {
	if ino == 0 || (fillMode(mode) == mode && mode&0o6000 == 0) {
		return nil
	}
	return m.Chmod(s.ctx, ino, mode)
}

// putTree uploads local directory local (fi) to remote directory remote,
// creating it if needed: subdirectories, regular files and symlinks (as
// symlinks, their targets as they are); other files are skipped and
// reported. Existing remote files are replaced, each as put does.
func (s *session) putTree(m *client.Mount, local, remote string, fi os.FileInfo) {
	mode := uint32(fi.Mode().Perm())
	dino, err := s.mkdirRemote(m, remote, mode)
	if err != nil {
		s.fail("put", remote, err)
		return
	}
	defer func() {
		if err := s.finalMode(m, dino, mode); err != nil {
			s.fail("put", remote, err)
		}
	}()
	entries, err := os.ReadDir(local)
	if err != nil {
		s.fail("put", local, err)
		return
	}
	for _, e := range entries {
		if s.ctx.Err() != nil {
			return
		}
		lp := filepath.Join(local, e.Name())
		rp := path.Join(remoteName(remote), e.Name())
		switch t := e.Type(); {
		case t.IsDir():
			info, err := e.Info()
			if err != nil {
				s.fail("put", lp, err)
				continue
			}
			s.putTree(m, lp, rp, info)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(lp)
			if err != nil {
				s.fail("put", lp, err)
				continue
			}
			s.replaceRemoteSymlink(m, "put", rp, target)
		case t.IsRegular():
			var existing *client.Stat
			st, err := m.GetStatPath(s.ctx, rp)
			switch {
			case err == nil && isDir(st):
				s.fail("put", rp, syscall.EISDIR)
				continue
			case err == nil:
				existing = &st
			case !errors.Is(err, syscall.ENOENT):
				s.fail("put", rp, err)
				continue
			}
			s.putLocalFile(m, lp, rp, existing)
		default:
			s.failMsg("put", lp, "not a regular file, directory or symlink: skipped")
		}
	}
}

// replaceRemoteSymlink makes p a symlink to target, replacing what is
// there (but a directory) in one rename.
func (s *session) replaceRemoteSymlink(m *client.Mount, op, p, target string) {
	dir, base := path.Split(remoteName(p))
	tmp := path.Join(dir, partialName(base))
	if _, err := m.SymlinkPath(s.ctx, tmp, target); err != nil {
		s.fail(op, p, err)
		return
	}
	if err := m.RenamePath(s.ctx, tmp, p); err != nil {
		s.fail(op, p, err)
		s.removeRemoteTemp(m, op, tmp)
	}
}

// ---- get ----

// cmdGet downloads REMOTE to LOCAL ("-": stdout; a directory: the file of
// REMOTE's base name in it). Several REMOTEs go into the directory LOCAL;
// -r downloads directories.
func cmdGet(s *session, f cmdFlags, args []string) {
	srcs, dst := args[:len(args)-1], args[len(args)-1]
	m, err := s.mount()
	if err != nil {
		return
	}
	dstIsDir := false
	if dst != "-" {
		fi, err := os.Stat(dst)
		dstIsDir = err == nil && fi.IsDir()
		if len(srcs) > 1 && !dstIsDir {
			s.fail("get", dst, syscall.ENOTDIR)
			return
		}
	}
	for _, src := range srcs {
		if s.ctx.Err() != nil {
			return
		}
		_, st, err := s.resolve(m, src)
		if err != nil {
			s.fail("get", src, err)
			continue
		}
		target := dst
		if dstIsDir {
			target = filepath.Join(dst, path.Base(remoteName(src)))
		}
		switch {
		case isDir(st) && (!f.on('r') || dst == "-"):
			s.fail("get", src, syscall.EISDIR)
		case isDir(st):
			s.getTree(m, src, st, target)
		case dst == "-":
			s.getStdout(m, src, st)
		default:
			s.getFile(m, src, st, target, true)
		}
	}
}

// getStdout writes remote file src (st) to stdout.
func (s *session) getStdout(m *client.Mount, src string, st client.Stat) {
	p := s.newProgress(int64(st.Size))
	_, err := s.copyOut(m, st.Ino, s.stdout, p)
	s.endProgress(p)
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			s.fail("get", "stdout", err)
			return
		}
		s.fail("get", src, err)
	}
}

// getFile downloads remote file src (st) to local path local: into a
// temporary file in local's directory, renamed over local at the end, and
// removed on an error or an interrupt. A new file gets src's permission
// bits (less the umask); one that replaces a file gets that file's. With
// follow, a symlink at local is followed (the file it names is
// replaced); without, it is replaced. Something at local that is not a
// regular file (a device such as /dev/null, a FIFO) is written to
// directly.
func (s *session) getFile(m *client.Mount, src string, st client.Stat, local string, follow bool) {
	final := local
	perm := fs.FileMode(st.Mode & 0o777)
	var existing fs.FileInfo
	fi, err := os.Lstat(local)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 && follow {
		if final, err = filepath.EvalSymlinks(local); err != nil {
			s.fail("get", local, err)
			return
		}
		fi, err = os.Lstat(final)
	}
	switch {
	case err == nil && fi.IsDir():
		s.fail("get", final, syscall.EISDIR)
		return
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		// replaced (not followed)
	case err == nil && !fi.Mode().IsRegular():
		s.getInPlace(m, src, st, final)
		return
	case err == nil:
		existing = fi
		perm = fi.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		s.fail("get", final, err)
		return
	}
	dir, base := filepath.Split(final)
	tmp := filepath.Join(dir, partialName(base))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		s.fail("get", final, err)
		return
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.failMsg("get", tmp, "cannot remove this partial file: "+errText(err))
			}
		}
	}()
	if existing != nil {
		if err := f.Chmod(perm); err != nil { // exactly, whatever the umask
			s.fail("get", final, err)
			return
		}
	}
	p := s.newProgress(int64(st.Size))
	_, err = s.copyOut(m, st.Ino, f, p)
	s.endProgress(p)
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			s.fail("get", final, err)
		} else {
			s.fail("get", src, err)
		}
		return
	}
	if err := f.Close(); err != nil {
		s.fail("get", final, err)
		return
	}
	if err := os.Rename(tmp, final); err != nil {
		s.fail("get", final, err)
		return
	}
	ok = true
}

// getInPlace writes remote file src to local, which is not a regular
// file (a device, a FIFO): opened for writing as it is.
func (s *session) getInPlace(m *client.Mount, src string, st client.Stat, local string) {
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		s.fail("get", local, err)
		return
	}
	_, err = s.copyOut(m, st.Ino, f, nil)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = &writeError{cerr}
	}
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			s.fail("get", local, err)
		} else {
			s.fail("get", src, err)
		}
	}
}

// sortedEntries returns the entries of remote directory ino (named name)
// with their stats, sorted by name, without "." and "..".
func (s *session) sortedEntries(m *client.Mount, name string, ino uint64) ([]client.DirEntry, error) {
	var out []client.DirEntry
	for e, err := range m.EntriesPlus(s.ctx, ino) {
		if err != nil {
			return nil, err
		}
		if e.Name == "." || e.Name == ".." {
			continue
		}
		if e.Stat == nil {
			st, err := m.GetStat(s.ctx, e.Inode)
			if err != nil {
				s.fail("stat", path.Join(remoteName(name), e.Name), err)
				continue
			}
			e.Stat = &st
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b client.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// getTree downloads remote directory src (st) to local directory local,
// creating it if needed: subdirectories, files and symlinks (as local
// symlinks with the same targets).
func (s *session) getTree(m *client.Mount, src string, st client.Stat, local string) {
	if err := os.Mkdir(local, fs.FileMode(st.Mode&0o777)|0o700); err != nil {
		fi, serr := os.Stat(local)
		if !errors.Is(err, fs.ErrExist) || serr != nil || !fi.IsDir() {
			s.fail("get", local, err)
			return
		}
	}
	entries, err := s.sortedEntries(m, src, st.Ino)
	if err != nil {
		s.fail("get", src, err)
		return
	}
	for _, e := range entries {
		if s.ctx.Err() != nil {
			return
		}
		rp := path.Join(remoteName(src), e.Name)
		lp := filepath.Join(local, e.Name)
		switch {
		case isDir(*e.Stat):
			s.getTree(m, rp, *e.Stat, lp)
		case isSymlink(*e.Stat):
			target, err := m.ReadSymlink(s.ctx, e.Inode)
			if err != nil {
				s.fail("get", rp, err)
				continue
			}
			tmp := filepath.Join(local, partialName(e.Name))
			if err := os.Symlink(target, tmp); err != nil {
				s.fail("get", lp, err)
				continue
			}
			if err := os.Rename(tmp, lp); err != nil {
				s.fail("get", lp, err)
				os.Remove(tmp)
			}
		default:
			s.getFile(m, rp, *e.Stat, lp, false)
		}
	}
}

// ---- cp ----

// copyChunk is how much one copy_range call asks for (the server's most).
const copyChunk = 64 << 20

// cmdCp copies remote files on the server: SRC to DST, or into DST when
// it is a directory (several SRCs: it must be); -r copies directories.
// The data is copied by the server (copy_range).
func cmdCp(s *session, f cmdFlags, args []string) {
	srcs, dst := args[:len(args)-1], args[len(args)-1]
	m, err := s.mount()
	if err != nil {
		return
	}
	dstIsDir := s.isDirRemote(m, dst)
	if len(srcs) > 1 && !dstIsDir {
		s.fail("cp", dst, syscall.ENOTDIR)
		return
	}
	for _, src := range srcs {
		if s.ctx.Err() != nil {
			return
		}
		_, st, err := s.resolve(m, src)
		if err != nil {
			s.fail("cp", src, err)
			continue
		}
		if isDir(st) {
			if !f.on('r') {
				s.fail("cp", src, syscall.EISDIR)
				continue
			}
			target := dst
			if dstIsDir {
				target = path.Join(remoteName(dst), path.Base(remoteName(src)))
			}
			if s.inside(m, src, target) {
				s.failMsg("cp", src, "cannot copy a directory into itself")
				continue
			}
			s.copyTree(m, src, st, target)
			continue
		}
		final, existing, err := s.remoteTarget(m, dst, path.Base(remoteName(src)))
		if err != nil {
			s.fail("cp", final, err)
			continue
		}
		if existing != nil && existing.Ino == st.Ino {
			s.failMsg("cp", src+" "+final, "are the same file")
			continue
		}
		s.copyFile(m, src, st, final, existing)
	}
}

// inside reports whether remote path target is directory dir or lies
// under it (symlinks resolved).
func (s *session) inside(m *client.Mount, dir, target string) bool {
	d, _, err := m.Realpath(s.ctx, dir)
	if err != nil {
		return false
	}
	// target may not exist yet: resolve its nearest existing ancestor.
	t := path.Clean(remoteName(target))
	rest := ""
	for {
		r, _, err := m.Realpath(s.ctx, t)
		if err == nil {
			t = path.Join(r, rest)
			break
		}
		if t == "/" {
			return false
		}
		rest = path.Join(path.Base(t), rest)
		t = path.Dir(t)
	}
	return t == d || strings.HasPrefix(t, strings.TrimSuffix(d, "/")+"/")
}

// copyFile copies remote file src (st) to final, through a temporary
// file renamed over final at the end, as putFile does. The new file gets
// src's mode, or when it replaces existing, that file's mode and owner.
func (s *session) copyFile(m *client.Mount, src string, st client.Stat, final string, existing *client.Stat) {
	dir, base := path.Split(remoteName(final))
	tmp := path.Join(dir, partialName(base))
	mode := st.Mode & 0o7777
	if existing != nil {
		mode = existing.Mode & 0o7777
	}
	nst, err := m.CreatePath(s.ctx, tmp, fillMode(mode))
	if err != nil {
		s.fail("cp", final, err)
		return
	}
	ok := false
	defer func() {
		if !ok {
			s.removeRemoteTemp(m, "cp", tmp)
		}
	}()
	if existing != nil && (existing.UID != nst.UID || existing.GID != nst.GID) {
		if err := m.Chown(s.ctx, nst.Ino, int64(existing.UID), int64(existing.GID)); err != nil {
			s.fail("cp", final, err)
			return
		}
	}
	p := s.newProgress(int64(st.Size))
	err = s.copyRange(m, st.Ino, nst.Ino, p)
	s.endProgress(p)
	if err != nil {
		s.fail("cp", src+" "+final, err)
		return
	}
	if err := s.finalMode(m, nst.Ino, mode); err != nil {
		s.fail("cp", final, err)
		return
	}
	if err := m.Flush(s.ctx, nst.Ino); err != nil {
		s.fail("cp", final, err)
		return
	}
	if err := m.RenamePath(s.ctx, tmp, final); err != nil {
		s.fail("cp", final, err)
		return
	}
	ok = true
}

// copyRange copies all of file src into the empty file dst with
// copy_range, or by reading and writing if the server has no copy_range.
func (s *session) copyRange(m *client.Mount, src, dst uint64, p *progress) error {
	var off uint64
	for {
		n, err := m.CopyRange(s.ctx, src, off, dst, off, copyChunk)
		if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EOPNOTSUPP) {
			return s.copyThrough(m, src, dst, off, p)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		off += n
		p.add(int64(n))
		if testHookChunk != nil {
			testHookChunk()
		}
	}
}

// copyThrough copies file src into dst from offset off by reading and
// writing through the client.
func (s *session) copyThrough(m *client.Mount, src, dst, off uint64, p *progress) error {
	buf := make([]byte, m.MaxIOSize())
	for {
		n, err := m.Read(s.ctx, src, buf, off)
		if err != nil {
			return err
		}
		if n > 0 {
			if _, err := m.Write(s.ctx, dst, buf[:n], off); err != nil {
				return err
			}
			off += uint64(n)
			p.add(int64(n))
		}
		if n < len(buf) {
			return nil
		}
	}
}

// copyTree copies remote directory src (st) to dst, creating it if
// needed: subdirectories, files and symlinks (with the same targets).
func (s *session) copyTree(m *client.Mount, src string, st client.Stat, dst string) {
	dino, err := s.mkdirRemote(m, dst, st.Mode&0o7777)
	if err != nil {
		s.fail("cp", dst, err)
		return
	}
	defer func() {
		if err := s.finalMode(m, dino, st.Mode&0o7777); err != nil {
			s.fail("cp", dst, err)
		}
	}()
	entries, err := s.sortedEntries(m, src, st.Ino)
	if err != nil {
		s.fail("cp", src, err)
		return
	}
	for _, e := range entries {
		if s.ctx.Err() != nil {
			return
		}
		sp := path.Join(remoteName(src), e.Name)
		dp := path.Join(remoteName(dst), e.Name)
		switch {
		case isDir(*e.Stat):
			s.copyTree(m, sp, *e.Stat, dp)
		case isSymlink(*e.Stat):
			target, err := m.ReadSymlink(s.ctx, e.Inode)
			if err != nil {
				s.fail("cp", sp, err)
				continue
			}
			s.replaceRemoteSymlink(m, "cp", dp, target)
		default:
			var existing *client.Stat
			dstSt, err := m.GetStatPath(s.ctx, dp)
			switch {
			case err == nil && isDir(dstSt):
				s.fail("cp", dp, syscall.EISDIR)
				continue
			case err == nil:
				existing = &dstSt
			case !errors.Is(err, syscall.ENOENT):
				s.fail("cp", dp, err)
				continue
			}
			s.copyFile(m, sp, *e.Stat, dp, existing)
		}
	}
}
