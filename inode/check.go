package inode

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// Check verifies the volume's consistency, fsck-style, and returns one
// line per problem found (nil when the volume is consistent). It checks
// that every directory entry points at a live inode of the type it
// records, that both indexes of each entry agree, that link counts are
// right (files: their entries; directories: 2 plus subdirectories), that
// every inode is reachable from the root, that each directory's parent
// is the directory holding it, that no data, symlink target or xattr
// belongs to a missing inode, that no data extends past its inode's size,
// that the orphan list (open files without links: orphan.go) lists
// exactly the files without links, that the inode counters match, and, on
// a shared volume, that the usage keys add up to the files' sizes
// (usage.go). Data that a failed engine call left
// behind and that the next Sync removes is not reported. It holds the namespace lock shared
// for its whole run.
//
// It first reads the volume in memory that does not grow with its size
// (checkFast); only when that finds a problem does it run the exact check,
// which holds the volume's inodes and entries in memory, to name each.
func (fs *FS) Check(ctx context.Context) ([]string, error) {
	return fs.CheckProgress(ctx, nil)
}

// CheckProgress is Check telling progress, at most every two seconds and
// at the end of each phase, to say (nil: nowhere).
func (fs *FS) CheckProgress(ctx context.Context, say func(phase string, n int64, done bool)) ([]string, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	progress := logProgress(2*time.Second, say)
	usage, err := fs.checkUsage(ctx)
	if err != nil {
		return nil, err
	}
	ok, err := fs.checkFast(ctx, progress)
	if err != nil {
		return nil, err
	}
	if verifyCheckFast {
		probs, err := fs.checkExact(ctx)
		if err == nil && ok != (len(probs) == 0) {
			err = fmt.Errorf("inode: checkFast says consistent=%v, the exact check found %d problems: %q", ok, len(probs), probs)
		}
		return append(probs, usage...), err
	}
	if ok {
		return usage, nil
	}
	progress("problems found; the exact check names them", 0, true)
	probs, err := fs.checkExact(ctx)
	return append(probs, usage...), err
}

// verifyCheckFast makes Check run the exact check too and fail when the
// two disagree (set by this package's tests).
var verifyCheckFast bool

// checkExact is Check holding the volume in memory; called with fs.ns
// held.
func (fs *FS) checkExact(ctx context.Context) ([]string, error) {
	var probs []string
	report := func(format string, args ...any) {
		probs = append(probs, fmt.Sprintf(format, args...))
	}

	recs := map[Ino]*record{}
	var maxIno Ino
	err := fs.be.Scan(ctx, []byte{pfxInode}, nil, func(k, v []byte) bool {
		ino := Ino(binary.BigEndian.Uint64(k[1:]))
		r, err := decodeRecord(ino, v)
		if err != nil {
			report("%v", err)
			return true
		}
		recs[ino] = r
		maxIno = max(maxIno, ino)
		return true
	})
	if err != nil {
		return nil, err
	}
	root := recs[RootIno]
	if root == nil || !root.IsDir() {
		report("root inode missing or not a directory")
	}

	type ent struct {
		dir    Ino
		name   string
		ino    Ino
		cookie int64
		typ    uint8
	}
	var ents []ent
	err = fs.be.Scan(ctx, []byte{pfxEntry}, nil, func(k, v []byte) bool {
		e, err := decodeEntry(v)
		if err != nil {
			report("entry %q: %v", k, err)
			return true
		}
		ents = append(ents, ent{Ino(binary.BigEndian.Uint64(k[1:9])), string(k[9:]), e.Ino, e.Cookie, e.Type})
		return true
	})
	if err != nil {
		return nil, err
	}
	cookies := map[string][]byte{}
	err = fs.be.Scan(ctx, []byte{pfxCookie}, nil, func(k, v []byte) bool {
		cookies[string(k)] = bytes.Clone(v)
		return true
	})
	if err != nil {
		return nil, err
	}

	links := map[Ino]uint64{}
	subdirs := map[Ino]uint64{}
	for _, e := range ents {
		d := recs[e.dir]
		switch {
		case d == nil:
			report("entry %d/%q: directory %d does not exist", e.dir, e.name, e.dir)
			continue
		case !d.IsDir():
			report("entry %d/%q: inode %d is not a directory", e.dir, e.name, e.dir)
		case e.cookie < firstCookie || e.cookie >= d.NextCookie:
			report("entry %d/%q: cookie %d outside [%d,%d)", e.dir, e.name, e.cookie, firstCookie, d.NextCookie)
		}
		if err := checkNewName(e.name); err != nil {
			report("entry %d/%q: bad name: %v", e.dir, e.name, err)
		}
		ck := string(cookieKey(e.dir, e.cookie))
		if v, ok := cookies[ck]; !ok {
			report("entry %d/%q: no cookie index", e.dir, e.name)
		} else {
			ino, typ, name, err := decodeCookieValue(v)
			if err != nil || ino != e.ino || typ != e.typ || name != e.name {
				report("entry %d/%q: cookie index disagrees (%d %d %q %v)", e.dir, e.name, ino, typ, name, err)
			}
			delete(cookies, ck)
		}
		r := recs[e.ino]
		if r == nil {
			report("entry %d/%q: dangling, inode %d does not exist", e.dir, e.name, e.ino)
			continue
		}
		if r.DirType() != e.typ {
			report("entry %d/%q: type %d, inode %d has type %d", e.dir, e.name, e.typ, e.ino, r.DirType())
		}
		links[e.ino]++
		if r.IsDir() {
			subdirs[e.dir]++
			if r.Parent != e.dir {
				report("directory %d: parent %d, but it is entry %q of %d", e.ino, r.Parent, e.name, e.dir)
			}
		}
	}
	for k := range cookies {
		report("cookie index %x has no entry", k)
	}

	orphans, err := fs.checkOrphans(ctx, recs, links, report)
	if err != nil {
		return nil, err
	}
	for ino, r := range recs {
		switch {
		case r.IsDir():
			want := 1
			if ino == RootIno {
				want = 0
			}
			if links[ino] != uint64(want) {
				report("directory %d: %d entries point at it, want %d", ino, links[ino], want)
			}
			if r.Nlink != 2+subdirs[ino] {
				report("directory %d: nlink %d, want %d", ino, r.Nlink, 2+subdirs[ino])
			}
		case r.Nlink == 0 && links[ino] == 0 && orphans[ino]:
			// An unlinked file kept open: fine (checkOrphans).
		default:
			if links[ino] == 0 {
				report("inode %d: orphan (no entry points at it, not on the orphan list)", ino)
			}
			if r.Nlink != links[ino] {
				report("inode %d: nlink %d, but %d entries", ino, r.Nlink, links[ino])
			}
		}
		if r.Mode&ModeType == ModeSymlink {
			if _, err := fs.be.Get(ctx, symlinkKey(ino)); err != nil {
				report("symlink %d: target missing: %v", ino, err)
			}
		}
	}
	// Reachability: walk parents up to the root; a cycle or a break
	// means a directory tree detached from the root.
	for ino, r := range recs {
		if !r.IsDir() {
			continue
		}
		p, steps := ino, 0
		for p != RootIno && steps <= len(recs) {
			pr := recs[p]
			if pr == nil {
				report("directory %d: ancestor %d missing", ino, p)
				break
			}
			p = pr.Parent
			steps++
		}
		if steps > len(recs) {
			report("directory %d: not reachable from the root (cycle)", ino)
		}
	}

	for _, pfx := range []byte{pfxSymlink, pfxXattr} {
		err = fs.be.Scan(ctx, []byte{pfx}, nil, func(k, _ []byte) bool {
			ino := Ino(binary.BigEndian.Uint64(k[1:9]))
			if r := recs[ino]; r == nil || (pfx == pfxSymlink && r.Mode&ModeType != ModeSymlink) {
				report("key %q: belongs to missing inode %d", k, ino)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	dataSize := map[Ino]int64{}
	err = fs.be.ListData(ctx, func(ino Ino, size int64) bool {
		dataSize[ino] = size
		r := recs[ino]
		switch {
		case fs.isUntidy(ino):
			// Left by a failed call, invisible to reads, and removed by
			// the next Sync or Open: not an inconsistency.
		case r == nil:
			report("data of %d bytes: leaked, inode %d does not exist", size, ino)
		case r.Mode&ModeType != ModeRegular:
			report("data of %d bytes: leaked, inode %d is not a file", size, ino)
		case uint64(size) > r.Size:
			report("inode %d: data of %d bytes beyond size %d", ino, size, r.Size)
		}
		return true
	})
	if err != nil {
		return nil, err
	}

	if fs.dataCovers {
		// Every file's data must cover its size: anything short was lost
		// (a data file truncated or deleted outside proxyfs).
		for ino, r := range recs {
			if r.Mode&ModeType != ModeRegular || r.Size == 0 {
				continue
			}
			switch have, ok := dataSize[ino]; {
			case !ok:
				report("inode %d: size %d, but its data is missing", ino, r.Size)
			case uint64(have) < r.Size:
				report("inode %d: size %d, but its data ends at %d", ino, r.Size, have)
			}
		}
	}

	if fs.sharedIno != nil {
		// The engine hands out inode numbers (keyNextIno is not used).
		if n, err := fs.sharedIno.AllocInos(ctx, 0, 0); err != nil || n <= maxIno {
			report("the engine's next inode number %d not above highest inode %d (%v)", n, maxIno, err)
		}
	} else if v, err := fs.be.Get(ctx, keyNextIno); err != nil {
		report("next inode counter: %v", err)
	} else if n, err := decodeUint64(v); err != nil || Ino(n) <= maxIno {
		report("next inode counter %d not above highest inode %d (%v)", n, maxIno, err)
	}
	if fs.shared != nil {
		// Several gateways change the volume: the inode count is counted
		// when asked for, not stored (keyInodeUsed keeps its value from
		// the format).
	} else if v, err := fs.be.Get(ctx, keyInodeUsed); err != nil {
		report("inode count: %v", err)
	} else if n, err := decodeUint64(v); err != nil || n != uint64(len(recs)) {
		report("inode count %d, but %d inodes (%v)", n, len(recs), err)
	}
	if err := fs.checkCI(ctx, report); err != nil {
		return nil, err
	}
	return probs, nil
}
