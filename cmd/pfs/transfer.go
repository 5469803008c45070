package main

import (
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// progressThreshold is the size above which put and get show progress.
const progressThreshold = 8 << 20

// openRemoteFile resolves p (following symlinks) and checks that it is a
// regular file.
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

// cmdCat writes remote files to stdout.
func cmdCat(s *session, _ cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args {
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

// cmdGet downloads REMOTE to LOCAL ("-": stdout; a directory: the file of
// REMOTE's base name in it).
func cmdGet(s *session, _ cmdFlags, args []string) {
	remote, local := args[0], args[1]
	m, err := s.mount()
	if err != nil {
		return
	}
	st, err := s.openRemoteFile(m, remote)
	if err != nil {
		s.fail("get", remote, err)
		return
	}
	var w io.Writer = s.stdout
	var f *os.File
	if local != "-" {
		if fi, err := os.Stat(local); err == nil && fi.IsDir() {
			local = filepath.Join(local, path.Base(remoteName(remote)))
		}
		f, err = os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			s.fail("get", local, err)
			return
		}
		w = f
	}
	p := newProgress(s.stderr, int64(st.Size))
	_, err = s.copyOut(m, st.Ino, w, p)
	p.finish()
	if f != nil {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = &writeError{cerr}
		}
	}
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			name := local
			if f == nil {
				name = "stdout"
			}
			s.fail("get", name, err)
			return
		}
		s.fail("get", remote, err)
	}
}

// cmdPut uploads LOCAL ("-": stdin) to REMOTE (a directory: the file of
// LOCAL's base name in it), creating it or truncating it, and flushes it.
// A new file gets the local file's permission bits (0644 from stdin).
func cmdPut(s *session, _ cmdFlags, args []string) {
	local, remote := args[0], args[1]
	var r io.Reader = s.stdin
	size := int64(-1)
	mode := uint32(0o644)
	if local != "-" {
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
		if fi.IsDir() {
			s.fail("put", local, syscall.EISDIR)
			return
		}
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		mode = uint32(fi.Mode().Perm())
		r = f
	} else if f, ok := s.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	m, err := s.mount()
	if err != nil {
		return
	}
	if _, st, err := s.resolve(m, remote); err == nil && isDir(st) {
		if local == "-" {
			s.fail("put", remote, syscall.EISDIR)
			return
		}
		remote = path.Join(remoteName(remote), filepath.Base(local))
	}
	ino, err := s.createOrTruncate(m, remote, mode)
	if err != nil {
		s.fail("put", remote, err)
		return
	}
	p := newProgress(s.stderr, size)
	err = s.copyIn(m, ino, r, p)
	p.finish()
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			s.fail("put", local, err)
		} else {
			s.fail("put", remote, err)
		}
		return
	}
	if err := m.Flush(s.ctx, ino); err != nil {
		s.fail("put", remote, err)
	}
}

// createOrTruncate creates the regular file p, or truncates it if it
// exists (following a symlink), and returns its inode.
func (s *session) createOrTruncate(m *client.Mount, p string, mode uint32) (uint64, error) {
	st, err := m.CreatePath(s.ctx, p, mode)
	if err == nil {
		return st.Ino, nil
	}
	if !errors.Is(err, syscall.EEXIST) {
		return 0, err
	}
	st, err = s.openRemoteFile(m, p)
	if err != nil {
		return 0, err
	}
	if err := m.Resize(s.ctx, st.Ino, 0); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// readError marks an error reading the local side of a transfer.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// copyIn streams r to remote file ino in MaxIOSize chunks from offset 0.
func (s *session) copyIn(m *client.Mount, ino uint64, r io.Reader, p *progress) error {
	buf := make([]byte, m.MaxIOSize())
	var off uint64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			w, err := m.Write(s.ctx, ino, buf[:n], off)
			if err != nil {
				return err
			}
			if w < n {
				return io.ErrShortWrite
			}
			off += uint64(n)
			p.add(int64(n))
		}
		switch {
		case rerr == io.EOF, rerr == io.ErrUnexpectedEOF:
			return nil
		case rerr != nil:
			return &readError{rerr}
		}
	}
}
