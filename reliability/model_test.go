package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// file is the expected state of one regular file; hard links share it.
type file struct {
	data      []byte
	mode      uint32 // permission bits
	xattrs    map[string]string
	uncertain bool // a change to it was in flight at the crash
}

// tree is the expected content of one worker's directory: files (by
// name; links share a *file), empty subdirectories, and names whose
// existence is unknown because a change to them was in flight at the
// crash.
type tree struct {
	dirPath   string
	dir       uint64
	files     map[string]*file
	dirs      map[string]bool
	uncertain map[string]bool
	next      int // for fresh names
	acked     int // operations acknowledged since the last verification
}

func newTree(path string, dir uint64) *tree {
	return &tree{dirPath: path, dir: dir, files: map[string]*file{}, dirs: map[string]bool{}, uncertain: map[string]bool{}}
}

func (t *tree) fresh(prefix string) string {
	t.next++
	return fmt.Sprintf("%s%d", prefix, t.next)
}

func pick[V any](r *rand.Rand, m map[string]V) (string, bool) {
	if len(m) == 0 {
		return "", false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[r.IntN(len(keys))], true
}

// isProtocolErr reports whether err is a genuine answer from the server
// (an errno) rather than a broken connection or a cancelled call.
func isProtocolErr(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Reason {
	case client.ReasonTimeout, client.ReasonCanceled, client.ReasonClosed:
		return false
	}
	return true
}

// step runs one random operation. It returns nil on success (the model is
// updated), errStop when the call's outcome is unknown (the model marks
// what it touched as uncertain), or an error for a wrong answer.
func (t *tree) step(ctx context.Context, m *client.Mount, r *rand.Rand) error {
	var touched []string
	var touchedFile *file
	outcome := func(op string, err error) error {
		if err == nil {
			t.acked++
			return nil
		}
		if ctx.Err() != nil || !isProtocolErr(err) {
			for _, n := range touched {
				t.uncertain[n] = true
			}
			if touchedFile != nil {
				touchedFile.uncertain = true
			}
			return errStop
		}
		return fmt.Errorf("%s in %s: %w", op, t.dirPath, err)
	}
	switch op := r.IntN(12); {
	case op < 2 || len(t.files) == 0: // create + first write
		name := t.fresh("f")
		touched = []string{name}
		st, err := m.Create(ctx, t.dir, name, 0o644)
		if err := outcome("create", err); err != nil {
			return err
		}
		f := &file{mode: 0o644, xattrs: map[string]string{}}
		t.files[name] = f
		_ = st
		data := randBytes(r, 1+r.IntN(20000))
		touchedFile = f
		_, err = m.Write(ctx, st.Ino, data, 0)
		if err := outcome("write", err); err != nil {
			return err
		}
		f.data = data
	case op == 2: // overwrite or extend
		name, _ := pick(r, t.files)
		f := t.files[name]
		touchedFile = f
		ino, err := m.Lookup(ctx, t.dir, name)
		if err := outcome("lookup", err); err != nil {
			return err
		}
		off := r.IntN(len(f.data) + 5000)
		data := randBytes(r, 1+r.IntN(10000))
		_, err = m.Write(ctx, ino, data, uint64(off))
		if err := outcome("write", err); err != nil {
			return err
		}
		f.data = writeAt(f.data, data, off)
	case op == 3: // flush
		name, _ := pick(r, t.files)
		ino, err := m.Lookup(ctx, t.dir, name)
		if err := outcome("lookup", err); err != nil {
			return err
		}
		if err := outcome("flush", m.Flush(ctx, ino)); err != nil {
			return err
		}
	case op == 4: // rename, to a fresh name or over another file
		a, _ := pick(r, t.files)
		b := t.fresh("r")
		if r.IntN(2) == 0 {
			b, _ = pick(r, t.files)
		}
		touched = []string{a, b}
		if err := outcome("rename", m.Rename(ctx, t.dir, a, t.dir, b)); err != nil {
			return err
		}
		if a != b && t.files[a] != t.files[b] {
			t.files[b] = t.files[a]
			delete(t.files, a)
		} else if a != b {
			// Onto another link of the same file: rename(2) does nothing.
		}
	case op == 5: // link
		a, _ := pick(r, t.files)
		b := t.fresh("l")
		touched = []string{b}
		ino, err := m.Lookup(ctx, t.dir, a)
		if err := outcome("lookup", err); err != nil {
			return err
		}
		if err := outcome("link", m.Link(ctx, t.dir, b, ino)); err != nil {
			return err
		}
		t.files[b] = t.files[a]
	case op == 6: // unlink
		a, _ := pick(r, t.files)
		touched = []string{a}
		if err := outcome("unlink", m.Unlink(ctx, t.dir, a)); err != nil {
			return err
		}
		delete(t.files, a)
	case op == 7: // mkdir
		name := t.fresh("d")
		touched = []string{name}
		_, err := m.Mkdir(ctx, t.dir, name, 0o755)
		if err := outcome("mkdir", err); err != nil {
			return err
		}
		t.dirs[name] = true
	case op == 8: // rmdir
		name, ok := pick(r, t.dirs)
		if !ok {
			return nil
		}
		touched = []string{name}
		if err := outcome("rmdir", m.Rmdir(ctx, t.dir, name)); err != nil {
			return err
		}
		delete(t.dirs, name)
	case op == 9: // setattr: mode
		name, _ := pick(r, t.files)
		f := t.files[name]
		touchedFile = f
		mode := uint32(r.IntN(0o777))
		_, err := m.SetAttrPath(ctx, t.dirPath+"/"+name, client.Attrs{Mask: wire.SetMode, Mode: mode})
		if err := outcome("setattr", err); err != nil {
			return err
		}
		f.mode = mode
	case op == 10: // xattr
		name, _ := pick(r, t.files)
		f := t.files[name]
		touchedFile = f
		k := fmt.Sprintf("user.k%d", r.IntN(3))
		v := string(randBytes(r, r.IntN(100)))
		ino, err := m.Lookup(ctx, t.dir, name)
		if err := outcome("lookup", err); err != nil {
			return err
		}
		if err := outcome("set_xattr", m.SetXattr(ctx, ino, k, []byte(v), 0)); err != nil {
			return err
		}
		f.xattrs[k] = v
	default: // resize
		name, _ := pick(r, t.files)
		f := t.files[name]
		touchedFile = f
		size := r.IntN(len(f.data) + 3000)
		if err := outcome("resize", m.ResizePath(ctx, t.dirPath+"/"+name, uint64(size))); err != nil {
			return err
		}
		f.data = resize(f.data, size)
	}
	return nil
}

var errStop = errors.New("outcome unknown")

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeAt(data, p []byte, off int) []byte {
	if end := off + len(p); end > len(data) {
		data = resize(data, end)
	}
	copy(data[off:], p)
	return data
}

func resize(data []byte, n int) []byte {
	if n <= len(data) {
		return data[:n:n]
	}
	return append(data, make([]byte, n-len(data))...)
}

// verify compares the server's content of the directory with the model.
// Everything the model is certain of must be there exactly; a name that
// is not in the model and not uncertain must not exist. It returns the
// number of facts checked and the mismatches found.
func (t *tree) verify(ctx context.Context, m *client.Mount) (checked int, lost []string, err error) {
	ents, err := m.ReadDirAll(ctx, t.dir)
	if err != nil {
		return 0, nil, fmt.Errorf("readdir %s: %w", t.dirPath, err)
	}
	onServer := map[string]client.DirEntry{}
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			onServer[e.Name] = e
		}
	}
	links := map[*file]int{}
	for _, f := range t.files {
		links[f]++
	}
	inoOf := map[*file]uint64{}
	for name, f := range t.files {
		e, ok := onServer[name]
		checked++
		if !ok {
			if !t.uncertain[name] {
				lost = append(lost, fmt.Sprintf("%s/%s: acknowledged file missing", t.dirPath, name))
			}
			continue
		}
		if t.uncertain[name] {
			continue
		}
		if prev, ok := inoOf[f]; ok && prev != e.Inode {
			lost = append(lost, fmt.Sprintf("%s/%s: link points at inode %d, want %d", t.dirPath, name, e.Inode, prev))
		}
		inoOf[f] = e.Inode
		if f.uncertain {
			continue
		}
		st, err := m.GetStat(ctx, e.Inode)
		if err != nil {
			return checked, lost, err
		}
		got := make([]byte, len(f.data)+10)
		n, err := m.Read(ctx, e.Inode, got, 0)
		if err != nil {
			return checked, lost, err
		}
		checked += 3
		if !bytes.Equal(got[:n], f.data) {
			lost = append(lost, fmt.Sprintf("%s/%s: content differs (%d bytes, want %d)", t.dirPath, name, n, len(f.data)))
		}
		if st.Mode&0o7777 != f.mode {
			lost = append(lost, fmt.Sprintf("%s/%s: mode %o, want %o", t.dirPath, name, st.Mode&0o7777, f.mode))
		}
		if !t.anyUncertainLink(f) && st.Nlink != uint64(links[f]) {
			lost = append(lost, fmt.Sprintf("%s/%s: nlink %d, want %d", t.dirPath, name, st.Nlink, links[f]))
		}
		for k, v := range f.xattrs {
			checked++
			got, err := m.GetXattr(ctx, e.Inode, k)
			if err != nil || string(got) != v {
				lost = append(lost, fmt.Sprintf("%s/%s: xattr %s: %q %v", t.dirPath, name, k, got, err))
			}
		}
	}
	for name := range t.dirs {
		checked++
		if e, ok := onServer[name]; (!ok || e.Type != client.DTDir) && !t.uncertain[name] {
			lost = append(lost, fmt.Sprintf("%s/%s: acknowledged directory missing", t.dirPath, name))
		}
	}
	for name := range onServer {
		if t.files[name] == nil && !t.dirs[name] && !t.uncertain[name] {
			lost = append(lost, fmt.Sprintf("%s/%s: exists, but its removal was acknowledged", t.dirPath, name))
		}
	}
	return checked, lost, nil
}

func (t *tree) anyUncertainLink(f *file) bool {
	for name, g := range t.files {
		if g == f && t.uncertain[name] {
			return true
		}
	}
	return len(t.uncertain) > 0
}

// reload replaces the model by the server's content, so that what was
// uncertain becomes known.
func (t *tree) reload(ctx context.Context, m *client.Mount) error {
	ents, err := m.ReadDirAll(ctx, t.dir)
	if err != nil {
		return err
	}
	byIno := map[uint64]*file{}
	nt := newTree(t.dirPath, t.dir)
	nt.next = t.next
	for _, e := range ents {
		switch {
		case e.Name == "." || e.Name == "..":
		case e.Type == client.DTDir:
			nt.dirs[e.Name] = true
		default:
			if f := byIno[e.Inode]; f != nil {
				nt.files[e.Name] = f
				continue
			}
			st, err := m.GetStat(ctx, e.Inode)
			if err != nil {
				return err
			}
			f := &file{data: make([]byte, st.Size), mode: st.Mode & 0o7777, xattrs: map[string]string{}}
			if _, err := m.Read(ctx, e.Inode, f.data, 0); err != nil {
				return err
			}
			names, err := m.ListXattr(ctx, e.Inode)
			if err != nil {
				return err
			}
			for _, k := range names {
				v, err := m.GetXattr(ctx, e.Inode, k)
				if err != nil {
					return err
				}
				f.xattrs[k] = string(v)
			}
			byIno[e.Inode] = f
			nt.files[e.Name] = f
		}
	}
	*t = *nt
	return nil
}
