package inode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Case-insensitive lookup (LookupCI) for gateways whose clients name files
// case-insensitively (SMB). Every directory entry has a second key, its
// case-fold index key:
//
//	f<dir><fold(name)>\x00<name>   value: the entry's ino (8 bytes)
//
// written and deleted in the same batch as the entry itself (txn.addEntry,
// txn.removeEntry), so the index can never disagree with the entries
// after a crash. Names never contain NUL, so the NUL after the folded name
// makes "every name of dir that folds to F" exactly the keys under the
// prefix f<dir><F>\x00: one ordered scan of the backend, O(log n) in the
// size of the directory, never a scan of the directory.
//
// Folding (foldName) is Unicode simple case folding, rune by rune, as Go's
// unicode package defines it (unicode.SimpleFold; Unicode
// unicode.Version): two names match when they have the same number of
// runes and each pair of runes is equivalent under simple folding. ASCII
// letters match their other case; so do Latin-1 and other letters with
// case (É/é, Ä/ä), Greek (Σ/σ/ς), Cyrillic, and the few cross-script
// equivalents of simple folding (the Kelvin sign K with K and k, the long
// s ſ with S and s). Full folding is not applied: ß matches only ẞ
// (U+1E9E), not "ss"; ﬁ does not match "fi". No Unicode normalization is
// done: a precomposed é (U+00E9) and e plus a combining acute (U+0065
// U+0301) are different names. The Turkish dotted and dotless i (İ, ı)
// match nothing but themselves. This is close to what NTFS and Samba do:
// they compare names by upper-casing each character (no ß to ss, no
// normalization). The two rules differ for a handful of characters: the
// Kelvin sign (U+212A) and the Ohm sign (U+2126) match k and ω here but
// are their own upper case there, the dotless ı upper-cases to I there but
// matches only itself here, and NTFS folds nothing outside the Basic
// Multilingual Plane.
//
// A case-sensitive volume may hold several names that fold alike ("a" and
// "A"). LookupCI then returns the name asked for if it exists exactly,
// else the first of them in byte order of their UTF-8 names ("A" before
// "a", since upper-case ASCII sorts first).
//
// Volumes created before the index existed get it at their first
// read-write open (upgradeCI); keyCIIndex records that it is complete and
// the Unicode version it was folded with: a daemon built with another
// Unicode version rebuilds it at open, since folding may differ. A
// proxyfsd older than the index that serves a volume afterwards leaves it
// stale; Check reports that, and RebuildCaseFoldIndex (proxyfsd -repair)
// rebuilds it.
const pfxFold = 'f'

// keyCIIndex holds the Unicode version (unicode.Version) the case-fold
// index was built with; absent: the volume has no complete index.
var keyCIIndex = []byte("sci_index")

// foldName returns the case-fold key of a name: each rune replaced by the
// smallest rune of its simple case folding orbit (so 'a', 'A' -> 'A';
// 'k', 'K', U+212A KELVIN SIGN -> 'K'). Names are valid UTF-8.
func foldName(name string) string {
	ascii := true
	lower := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'a' <= c && c <= 'z' {
			lower = true
		}
	}
	if ascii {
		// The orbit minimum of an ASCII letter is its upper case.
		if !lower {
			return name
		}
		b := []byte(name)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b)
	}
	b := make([]byte, 0, len(name))
	for _, r := range name {
		b = utf8.AppendRune(b, foldRune(r))
	}
	return string(b)
}

// foldRune returns the smallest rune equivalent to r under simple case
// folding.
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// foldPrefix is the key prefix of every index key of dir whose name folds
// to fold.
func foldPrefix(dir Ino, fold string) []byte {
	k := make([]byte, 0, 9+len(fold)+1+MaxNameLen)
	k = append(k, pfxFold)
	k = binary.BigEndian.AppendUint64(k, uint64(dir))
	k = append(k, fold...)
	return append(k, 0)
}

// foldKey is the index key of name in dir.
func foldKey(dir Ino, name string) []byte {
	return append(foldPrefix(dir, foldName(name)), name...)
}

// addFold and delFold maintain the index; txn.addEntry and
// txn.removeEntry call them, so every entry change keeps it.
func (t *txn) addFold(dir Ino, name string, ino Ino) {
	t.batch.Put(foldKey(dir, name), encodeUint64(uint64(ino)))
}

func (t *txn) delFold(dir Ino, name string) {
	t.batch.Delete(foldKey(dir, name))
}

// LookupCI finds name in directory dir ignoring case (see foldName): the
// entry named exactly name if there is one, else the first entry, in byte
// order of names, whose name folds like name. It returns the entry's real
// name and its attributes; ENOENT if no name folds like it. "." and ".."
// are themselves. It costs one ordered scan of the index: O(log n) in the
// directory's size. c needs search permission on dir, as for Lookup.
func (fs *FS) LookupCI(ctx context.Context, c Caller, dir Ino, name string) (string, Attr, error) {
	if err := checkName(name); err != nil {
		return "", Attr{}, err
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	d, err := fs.searchDir(ctx, c, dir)
	if err != nil {
		return "", Attr{}, err
	}
	var ino Ino
	switch name {
	case ".":
		return name, d.Attr, nil
	case "..":
		ino = d.Parent
	default:
		var err error
		if fs.ciIndexed {
			name, ino, err = fs.scanFold(ctx, dir, name)
		} else {
			// A volume opened read-only before it got its index.
			name, ino, err = fs.scanDirFold(ctx, dir, name)
		}
		if err != nil {
			return "", Attr{}, err
		}
	}
	r, err := fs.get(ctx, ino)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return "", Attr{}, fmt.Errorf("lookup_ci %d/%q: points at missing inode %d: %w", dir, name, ino, syscall.EIO)
		}
		return "", Attr{}, err
	}
	return name, r.Attr, nil
}

// ciScanMax bounds the index keys scanFold reads looking for the exact
// name among names that fold alike (there are rarely more than one or
// two); beyond it, the exact name is looked up by its entry key.
const ciScanMax = 64

// scanFold finds name in dir's index: the exact name if it is there, else
// the first name in byte order that folds like it. A miss, the call a
// gateway makes before each create, is one ordered scan that finds
// nothing.
func (fs *FS) scanFold(ctx context.Context, dir Ino, name string) (string, Ino, error) {
	pfx := foldPrefix(dir, foldName(name))
	var (
		first, found string
		ino, fino    Ino
		n            int
		exact        bool
		bad          []byte
	)
	err := fs.be.Scan(ctx, pfx, nil, func(k, v []byte) bool {
		if len(v) != 8 {
			bad = bytes.Clone(k)
			return false
		}
		n++
		if string(k[len(pfx):]) == name {
			found, ino, exact = name, Ino(binary.BigEndian.Uint64(v)), true
			return false
		}
		if n == 1 {
			first, fino = string(k[len(pfx):]), Ino(binary.BigEndian.Uint64(v))
		}
		return n < ciScanMax
	})
	switch {
	case err != nil:
		return "", 0, err
	case bad != nil:
		return "", 0, fmt.Errorf("lookup_ci %d/%q: corrupt case-fold index key %q: %w", dir, name, bad, syscall.EIO)
	case exact:
		return found, ino, nil
	case n == 0:
		return "", 0, fmt.Errorf("lookup_ci %d/%q: %w", dir, name, syscall.ENOENT)
	case n == ciScanMax:
		// Too many names fold alike to look at them all: is the exact
		// one among them?
		e, err := fs.lookupEntry(ctx, dir, name)
		if err == nil {
			return name, e.Ino, nil
		}
		if !errors.Is(err, syscall.ENOENT) {
			return "", 0, err
		}
	}
	return first, fino, nil
}

// scanDirFold is scanFold without the index: it reads every entry of dir.
func (fs *FS) scanDirFold(ctx context.Context, dir Ino, name string) (string, Ino, error) {
	if e, err := fs.lookupEntry(ctx, dir, name); err == nil {
		return name, e.Ino, nil
	} else if !errors.Is(err, syscall.ENOENT) {
		return "", 0, err
	}
	want := foldName(name)
	pfx := inoKey(pfxEntry, dir)
	var (
		found string
		ino   Ino
		ok    bool
		derr  error
	)
	err := fs.be.Scan(ctx, pfx, nil, func(k, v []byte) bool {
		n := string(k[len(pfx):])
		if foldName(n) != want {
			return true
		}
		e, err := decodeEntry(v)
		if err != nil {
			derr = err
			return false
		}
		// Entry keys sort by name, so the first match is the smallest.
		found, ino, ok = n, e.Ino, true
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return "", 0, err
	}
	if !ok {
		return "", 0, fmt.Errorf("lookup_ci %d/%q: %w", dir, name, syscall.ENOENT)
	}
	return found, ino, nil
}

// ciBatchOps bounds the keys read and the operations committed at a time
// while the index is built, so that building it needs little memory
// whatever the volume's size.
var ciBatchOps = 8192 // a variable for the tests

// upgradeCI builds the case-fold index of a volume that has none, or one
// folded with another Unicode version (see buildCI). A read-only FS only
// notes whether the index is usable.
func (fs *FS) upgradeCI(ctx context.Context) error {
	v, err := fs.be.Get(ctx, keyCIIndex)
	switch {
	case err == nil && string(v) == unicode.Version:
		fs.ciIndexed = true
		return nil
	case err != nil && !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("open volume: case-fold index: %w", err)
	case fs.readOnly:
		return nil
	}
	if err := fs.buildCI(ctx, err == nil); err != nil {
		return fmt.Errorf("open volume: %w", err)
	}
	return nil
}

// RebuildCaseFoldIndex builds the case-fold index again from the entries
// (proxyfsd -repair): the way out of an index that Check finds wrong, for
// instance after a proxyfsd without the index served the volume.
func (fs *FS) RebuildCaseFoldIndex(ctx context.Context) error {
	if fs.readOnly {
		return fmt.Errorf("rebuild case-fold index: read-only: %w", syscall.EROFS)
	}
	fs.ns.Lock()
	defer fs.ns.Unlock()
	return fs.buildCI(ctx, true)
}

// buildCI removes every index key, adds one per entry, and then records
// keyCIIndex; hadMarker says that key exists (it is removed first). Until
// the key is back the index is not used, so an interrupted build is
// simply done again at the next open. Called with ns held exclusively, or
// before the FS serves.
func (fs *FS) buildCI(ctx context.Context, hadMarker bool) error {
	fail := func(err error) error { return fmt.Errorf("case-fold index: %w", err) }
	fs.ciIndexed = false
	if hadMarker {
		if err := fs.be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Delete: true, Key: keyCIIndex}}}); err != nil {
			return fail(err)
		}
	}
	// Every key first removed, then added: a key that is both stale and
	// current (folded alike by both Unicode versions) stays.
	removed, added := 0, 0
	err := fs.scanChunks(ctx, []byte{pfxFold}, func(b *vfsbackend.Batch, k, _ []byte) error {
		b.Delete(bytes.Clone(k))
		removed++
		return nil
	})
	if err != nil {
		return fail(err)
	}
	err = fs.scanChunks(ctx, []byte{pfxEntry}, func(b *vfsbackend.Batch, k, v []byte) error {
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("entry %q: %w", k, err)
		}
		b.Put(foldKey(Ino(binary.BigEndian.Uint64(k[1:9])), string(k[9:])), encodeUint64(uint64(e.Ino)))
		added++
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if err := fs.be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: keyCIIndex, Value: []byte(unicode.Version)}}}); err != nil {
		return fail(err)
	}
	fs.ciIndexed = true
	if added > 0 || removed > 0 {
		fs.log.Info("built the case-fold index", zap.Int("entries", added),
			zap.Int("removed", removed), zap.String("unicode", unicode.Version))
	}
	return nil
}

// scanChunks calls fn for every key with prefix pfx, ciBatchOps keys at a
// time, committing the batch fn fills after each chunk. (A Scan callback
// must not call into the backend, hence the chunks.)
func (fs *FS) scanChunks(ctx context.Context, pfx []byte, fn func(b *vfsbackend.Batch, k, v []byte) error) error {
	var start []byte
	for {
		var keys, vals [][]byte
		if err := fs.be.Scan(ctx, pfx, start, func(k, v []byte) bool {
			keys = append(keys, bytes.Clone(k))
			vals = append(vals, bytes.Clone(v))
			return len(keys) < ciBatchOps
		}); err != nil {
			return err
		}
		var b vfsbackend.Batch
		for i := range keys {
			if err := fn(&b, keys[i], vals[i]); err != nil {
				return err
			}
		}
		if b.Len() > 0 {
			if err := fs.be.Commit(ctx, &b); err != nil {
				return err
			}
		}
		if len(keys) < ciBatchOps {
			return nil
		}
		start = append(keys[len(keys)-1], 0) // the next key after the last
	}
}

// checkCI verifies the case-fold index against the entries, both ways:
// every entry has its index key with its ino, and every index key belongs
// to an entry. A volume without a complete index (opened read-only before
// its first read-write open with this version) is not checked: its index
// is built at that open. Called by Check with ns held.
func (fs *FS) checkCI(ctx context.Context, report func(format string, args ...any)) error {
	if !fs.ciIndexed {
		return nil
	}
	type ent struct {
		dir  Ino
		name string
		ino  Ino
	}
	want := map[string]ent{}
	err := fs.be.Scan(ctx, []byte{pfxEntry}, nil, func(k, v []byte) bool {
		if e, err := decodeEntry(v); err == nil { // Check reports bad entries
			dir, name := Ino(binary.BigEndian.Uint64(k[1:9])), string(k[9:])
			want[string(foldKey(dir, name))] = ent{dir, name, e.Ino}
		}
		return true
	})
	if err != nil {
		return err
	}
	err = fs.be.Scan(ctx, []byte{pfxFold}, nil, func(k, v []byte) bool {
		e, ok := want[string(k)]
		if !ok {
			report("case-fold index key %q: no such entry", k)
			return true
		}
		delete(want, string(k))
		if got, err := decodeUint64(v); err != nil || Ino(got) != e.ino {
			report("case-fold index key of %d/%q: inode %d, the entry has %d (%v)", e.dir, e.name, got, e.ino, err)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, e := range want {
		report("entry %d/%q: no case-fold index key", e.dir, e.name)
	}
	return nil
}
