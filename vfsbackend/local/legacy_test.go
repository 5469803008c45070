package local

import (
	"bufio"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// writeSnapshot writes the puts of m as of seq to dir/snapshot, in the
// format of volumes made before the on-disk index, atomically and durably:
// tests make such volumes to check their conversion.
func writeSnapshot(dir string, m *memtable, seq uint64) (err error) {
	tmp := filepath.Join(dir, snapTmpName)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	h := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	var hdr [len(snapMagic) + 16]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint64(hdr[len(snapMagic):], seq)
	binary.LittleEndian.PutUint64(hdr[len(snapMagic)+8:], uint64(m.kv.Len()))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	var werr error
	var vb [binary.MaxVarintLen64]byte
	pair := func(key, value []byte) bool {
		for _, f := range [][]byte{key, value} {
			n := binary.PutUvarint(vb[:], uint64(len(f)))
			if _, werr = w.Write(vb[:n]); werr != nil {
				return false
			}
			if _, werr = w.Write(f); werr != nil {
				return false
			}
		}
		return true
	}
	m.kv.Ascend(func(it ment) bool { return pair(it.key, it.value) })
	if werr != nil {
		return werr
	}
	var cnt [8]byte
	binary.LittleEndian.PutUint64(cnt[:], uint64(m.inl.Len()))
	if _, err := w.Write(cnt[:]); err != nil {
		return err
	}
	m.inl.Ascend(func(it ment) bool { return pair(it.key, it.value) })
	if werr != nil {
		return werr
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], h.Sum32())
	if _, err := f.Write(sum[:]); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return cerr
	}
	if err := os.Rename(tmp, filepath.Join(dir, snapName)); err != nil {
		return err
	}
	return syncDir(dir)
}
