package wire

import (
	"encoding/binary"
	"fmt"
)

// The extended stat record: a request with RequestFlagStatExt in its
// flags gets stat records of StatExtSize bytes (LOOKUP, GET_STAT, CREATE
// replies and READDIR_PLUS entries): the 120-byte record, then blocks and
// blksize (st_blocks, st_blksize), little-endian 64-bit. A request
// without the flag gets the 120-byte records, as before the flag existed.
const (
	RequestFlagStatExt = 1
	StatExtSize        = StatSize + 16
)

// AppendStatExt appends st's extended (136-byte) encoding.
func AppendStatExt(b []byte, st *Stat) []byte {
	b = AppendStat(b, st)
	b = binary.LittleEndian.AppendUint64(b, st.Blocks)
	return binary.LittleEndian.AppendUint64(b, st.Blksize)
}

// DecodeStatExt decodes an extended stat record from the first
// StatExtSize bytes of b.
func DecodeStatExt(b []byte) (Stat, error) {
	if len(b) < StatExtSize {
		return Stat{}, fmt.Errorf("%w: short extended stat record (%d bytes)", ErrBadFrame, len(b))
	}
	st, err := DecodeStat(b)
	if err != nil {
		return Stat{}, err
	}
	st.Blocks = binary.LittleEndian.Uint64(b[StatSize:])
	st.Blksize = binary.LittleEndian.Uint64(b[StatSize+8:])
	return st, nil
}

// StatRecordSize is the size of the stat records a request with flags
// gets.
func StatRecordSize(flags uint32) int {
	if flags&RequestFlagStatExt != 0 {
		return StatExtSize
	}
	return StatSize
}

// AppendStatRecord appends st as the record a request with flags gets.
func AppendStatRecord(b []byte, st *Stat, flags uint32) []byte {
	if flags&RequestFlagStatExt != 0 {
		return AppendStatExt(b, st)
	}
	return AppendStat(b, st)
}

// AppendDirEntryRecord is AppendDirEntry with the stat record a request
// with flags gets.
func AppendDirEntryRecord(b []byte, e *DirEntry, flags uint32) []byte {
	if flags&RequestFlagStatExt == 0 {
		return AppendDirEntry(b, e)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Cookie))
	b = binary.LittleEndian.AppendUint64(b, e.Inode)
	b = append(b, e.Type, byte(len(e.Name)))
	b = append(b, e.Name...)
	var st Stat
	if e.Stat != nil {
		st = *e.Stat
	}
	return AppendStatExt(b, &st)
}

// DecodeReaddirPlusExt decodes a READDIR_PLUS reply payload whose
// entries carry extended stat records.
func DecodeReaddirPlusExt(b []byte) (entries []DirEntry, eof bool, err error) {
	return decodeDirEntries(b, RequestFlagStatExt, false, nil)
}
