package inode

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"slices"
	"syscall"
	"time"
)

func isNotFound(err error) bool { return errors.Is(err, syscall.ENOENT) }

// The check of a large volume in bounded memory.
//
// Check's rules join records that the key layout keeps apart: an entry
// (by directory and name) and the inode it names (by number), an entry
// and its cookie and case-fold keys, a data object and its inode. Holding
// one side in memory costs hundreds of bytes per file. Instead, checkFast
// reads every key once, in order and in chunks, and compares multisets:
// for each join it adds a keyed hash of what one side says to one sum and
// of what the other side says to another (a link count n adds the hash n
// times), so that the sums are equal when the two sides agree, and differ
// (but for a chance of 2^-64 with a random key) when they do not. Rules
// that need no join (a name's syntax, a cookie's range, the counters) are
// checked as the keys go by. Memory holds a chunk of keys, the parent of
// each directory (for reachability), and the data objects that must be
// joined one by one (empty ones, ones a failed call left, or every one
// when data need not cover its file).
//
// checkFast only says whether the volume is consistent; when it is not,
// Check runs the exact check, which holds the volume in memory, to name
// every problem.

// checkChunk is how many keys checkFast reads per Scan.
const checkChunk = 4096

// CheckProgress is told, during a check, the phase it is in and how many
// keys or objects that phase has read so far (every checkChunk keys, and
// once at the end of the phase with done true).
type CheckProgress func(phase string, n int64, done bool)

type sums struct {
	seed maphash.Seed
	h    maphash.Hash
}

// of hashes tag and parts; variable-length parts must come last or carry
// their length.
func (s *sums) of(tag byte, ino uint64, parts ...[]byte) uint64 {
	s.h.Reset()
	_ = s.h.WriteByte(tag)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ino)
	_, _ = s.h.Write(b[:])
	for _, p := range parts {
		binary.BigEndian.PutUint64(b[:], uint64(len(p)))
		_, _ = s.h.Write(b[:])
		_, _ = s.h.Write(p)
	}
	return s.h.Sum64()
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

type kvPair struct{ k, v []byte }

// scanChunked reads every key with prefix, checkChunk at a time, calling
// process on each chunk outside the scan (so that it may call the engine).
func (fs *FS) scanChunked(ctx context.Context, prefix []byte, phase string, progress CheckProgress, process func([]kvPair) error) error {
	var start []byte
	var n int64
	for {
		chunk := make([]kvPair, 0, checkChunk)
		err := fs.be.Scan(ctx, prefix, start, func(k, v []byte) bool {
			chunk = append(chunk, kvPair{bytes.Clone(k), bytes.Clone(v)})
			return len(chunk) < checkChunk
		})
		if err != nil {
			return err
		}
		if len(chunk) > 0 {
			if err := process(chunk); err != nil {
				return err
			}
		}
		n += int64(len(chunk))
		if len(chunk) < checkChunk {
			progress(phase, n, true)
			return nil
		}
		progress(phase, n, false)
		start = append(chunk[len(chunk)-1].k, 0)
	}
}

// dataObj is a data object that checkFast joins with its inode directly.
type dataObj struct {
	ino     Ino
	size    int64
	untidy  bool
	matched bool
}

// checkFast reports whether the volume is consistent by Check's rules,
// reading it in chunks with memory that does not grow with the number of
// files. Called with fs.ns held.
func (fs *FS) checkFast(ctx context.Context, progress CheckProgress) (bool, error) {
	s := &sums{seed: maphash.MakeSeed()}
	s.h.SetSeed(s.seed)
	bad := false
	// The two sides of each join.
	var links, linksE, subdirs, subdirsE, parents, parentsE uint64
	var cookies, cookiesE, folds, foldsE, data, dataE, syms, symsE, orphans, orphansE uint64

	// Data objects first, for the join with the inodes below.
	var joined []dataObj
	var nData int64
	err := fs.be.ListData(ctx, func(ino Ino, size int64) bool {
		nData++
		untidy := fs.isUntidy(ino)
		if !fs.dataCovers || size == 0 || untidy {
			joined = append(joined, dataObj{ino: ino, size: size, untidy: untidy})
		} else {
			dataE += s.of('d', uint64(ino), u64(uint64(size)))
		}
		return true
	})
	if err != nil {
		return false, err
	}
	progress("data objects", nData, true)
	slices.SortFunc(joined, func(a, b dataObj) int { return cmp.Compare(a.ino, b.ino) })
	j := 0

	dirParent := map[Ino]Ino{}
	var count uint64
	var maxIno Ino
	rootOK := false
	err = fs.scanChunked(ctx, []byte{pfxInode}, "inodes", progress, func(chunk []kvPair) error {
		for _, kv := range chunk {
			ino := Ino(binary.BigEndian.Uint64(kv.k[1:]))
			r, err := decodeRecord(ino, kv.v)
			if err != nil {
				bad = true
				continue
			}
			count++
			maxIno = max(maxIno, ino)
			dt := []byte{r.DirType()}
			switch {
			case r.IsDir():
				if ino == RootIno {
					rootOK = true
				} else {
					links += s.of('n', uint64(ino), dt)
					parents += s.of('p', uint64(ino), u64(uint64(r.Parent)))
				}
				subdirs += (r.Nlink - 2) * s.of('s', uint64(ino))
				dirParent[ino] = r.Parent
			default:
				links += r.Nlink * s.of('n', uint64(ino), dt)
				if r.Nlink == 0 {
					orphans += s.of('o', uint64(ino))
				}
			}
			if r.Mode&ModeType == ModeSymlink {
				syms += s.of('l', uint64(ino))
			}
			// The data objects joined one by one, in inode order.
			for j < len(joined) && joined[j].ino < ino {
				j++ // no inode: an error unless untidy (below)
			}
			have := j < len(joined) && joined[j].ino == ino
			if have {
				o := &joined[j]
				o.matched = true
				switch {
				case o.untidy && r.Mode&ModeType != ModeRegular:
				case r.Mode&ModeType != ModeRegular:
					bad = true
				case !o.untidy && uint64(o.size) > r.Size:
					bad = true
				case fs.dataCovers && uint64(o.size) < r.Size:
					bad = true
				}
			} else if fs.dataCovers && r.Mode&ModeType == ModeRegular && r.Size > 0 {
				data += s.of('d', uint64(ino), u64(r.Size))
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, o := range joined {
		if !o.matched && !o.untidy {
			bad = true
		}
	}
	joined = nil
	if !rootOK {
		bad = true
	}

	var curDir Ino
	var curRec *record
	err = fs.scanChunked(ctx, []byte{pfxEntry}, "entries", progress, func(chunk []kvPair) error {
		for _, kv := range chunk {
			dir, name := Ino(binary.BigEndian.Uint64(kv.k[1:9])), string(kv.k[9:])
			e, err := decodeEntry(kv.v)
			if err != nil {
				bad = true
				continue
			}
			if curRec == nil || dir != curDir {
				curDir, curRec = dir, nil
				v, err := fs.be.Get(ctx, inodeKey(dir))
				if err != nil {
					if !isNotFound(err) {
						return err
					}
					bad = true
					continue
				}
				if curRec, err = decodeRecord(dir, v); err != nil {
					bad = true
					continue
				}
			}
			if curRec == nil || !curRec.IsDir() || e.Cookie < firstCookie || e.Cookie >= curRec.NextCookie || checkNewName(name) != nil {
				bad = true
			}
			linksE += s.of('n', uint64(e.Ino), []byte{e.Type})
			if e.Type == DTDir {
				subdirsE += s.of('s', uint64(dir))
				parentsE += s.of('p', uint64(e.Ino), u64(uint64(dir)))
			}
			cookiesE += s.of('c', uint64(e.Ino), cookieKey(dir, e.Cookie), []byte{e.Type}, kv.k[9:])
			if fs.ciIndexed {
				foldsE += s.of('f', uint64(e.Ino), foldKey(dir, name))
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	err = fs.scanChunked(ctx, []byte{pfxCookie}, "cookies", progress, func(chunk []kvPair) error {
		for _, kv := range chunk {
			ino, typ, name, err := decodeCookieValue(kv.v)
			if err != nil {
				bad = true
				continue
			}
			cookies += s.of('c', uint64(ino), kv.k, []byte{typ}, []byte(name))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if fs.ciIndexed {
		err = fs.scanChunked(ctx, []byte{pfxFold}, "case-fold index", progress, func(chunk []kvPair) error {
			for _, kv := range chunk {
				ino, err := decodeUint64(kv.v)
				if err != nil {
					bad = true
					continue
				}
				folds += s.of('f', ino, kv.k)
			}
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	err = fs.scanChunked(ctx, []byte{pfxOrphan}, "orphans", progress, func(chunk []kvPair) error {
		for _, kv := range chunk {
			if len(kv.k) != 9 {
				bad = true
				continue
			}
			orphansE += s.of('o', binary.BigEndian.Uint64(kv.k[1:]))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	err = fs.scanChunked(ctx, []byte{pfxSymlink}, "symlinks", progress, func(chunk []kvPair) error {
		for _, kv := range chunk {
			symsE += s.of('l', binary.BigEndian.Uint64(kv.k[1:9]))
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	var lastX Ino
	err = fs.scanChunked(ctx, []byte{pfxXattr}, "xattrs", progress, func(chunk []kvPair) error {
		for _, kv := range chunk {
			ino := Ino(binary.BigEndian.Uint64(kv.k[1:9]))
			if ino == lastX {
				continue
			}
			lastX = ino
			if _, err := fs.be.Get(ctx, inodeKey(ino)); err != nil {
				if !isNotFound(err) {
					return err
				}
				bad = true
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}

	// Reachability, as the exact check does it.
	for ino := range dirParent {
		p, steps := ino, 0
		for p != RootIno && steps <= len(dirParent) {
			pp, ok := dirParent[p]
			if !ok {
				bad = true
				break
			}
			p = pp
			steps++
		}
		if steps > len(dirParent) {
			bad = true
		}
	}
	progress("directories reachable", int64(len(dirParent)), true)

	if fs.sharedIno != nil {
		if n, err := fs.sharedIno.AllocInos(ctx, 0, 0); err != nil || n <= maxIno {
			bad = true
		}
	} else if v, err := fs.be.Get(ctx, keyNextIno); err != nil {
		bad = true
	} else if n, err := decodeUint64(v); err != nil || Ino(n) <= maxIno {
		bad = true
	}
	if fs.shared != nil {
		// Several gateways: the inode count is counted when asked for,
		// not stored (as in checkExact).
	} else if v, err := fs.be.Get(ctx, keyInodeUsed); err != nil {
		bad = true
	} else if n, err := decodeUint64(v); err != nil || n != count {
		bad = true
	}
	return !bad && links == linksE && subdirs == subdirsE && parents == parentsE && cookies == cookiesE &&
		folds == foldsE && data == dataE && syms == symsE && orphans == orphansE, nil
}

// logProgress returns a CheckProgress that calls say at most every
// interval, and at the end of each phase.
func logProgress(interval time.Duration, say func(phase string, n int64, done bool)) CheckProgress {
	if say == nil {
		return func(string, int64, bool) {}
	}
	var last time.Time
	return func(phase string, n int64, done bool) {
		if done || time.Since(last) >= interval {
			last = time.Now()
			say(phase, n, done)
		}
	}
}
