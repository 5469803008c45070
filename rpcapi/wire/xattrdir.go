package wire

import (
	"encoding/binary"
	"fmt"
)

// Directory listings with extended attributes (PROTOCOL.md, "Listings
// with xattrs"): readdir_plus with the member "xattrs", and its binary
// form READDIR_PLUS_XATTR, return with each entry the names of its
// extended attributes and the values of the names the caller asked for,
// so that a gateway that reads an attribute of every listed entry (SMB's
// DOS attributes and EA size) needs no request per entry.

// OpReaddirPlusXattr is READDIR_PLUS with xattrs: directory Inode after
// cookie int64(Offset); the payload is XattrDirRequest's encoding (most
// entries wanted, then the xattr names wanted). The reply is READDIR_PLUS's
// (eof byte, entries) with each entry followed by its xattr block
// (AppendEntryXattrs).
const OpReaddirPlusXattr = 11

// Limits of a listing with xattrs.
const (
	// MaxXattrDirNames is the most xattr names one listing may ask for.
	MaxXattrDirNames = 16
	// XattrDirBudget: a batch ends after the entry whose xattr names and
	// values bring the batch's total over this many bytes (at least one
	// entry is returned). The JSON form uses half of it (base64).
	XattrDirBudget = 1 << 20
)

// ReaddirPlusParams are the params of readdir_plus: those of readdir and,
// optionally, Xattrs, the names of the xattrs whose values each entry
// carries. With Xattrs present (even empty), each entry has Xattr.
type ReaddirPlusParams struct {
	ReaddirParams
	Xattrs *[]string `json:"xattrs"`
}

// EntryXattrs are the extended attributes of one listed entry, as the
// caller may see them (the rules of list_xattr and get_xattr).
type EntryXattrs struct {
	// Errno is list_xattr's errno for this entry (EACCES, ...); then
	// Names is empty and every value carries the same errno.
	Errno uint32 `json:"errno,omitempty"`
	// Names are the entry's xattr names, sorted (list_xattr's result).
	Names []string `json:"names"`
	// Values has one member per requested name, in the request's order.
	Values []XattrValue `json:"values"`
}

// XattrValue is one requested xattr of an entry: its value, or the errno
// get_xattr gives for it (ENODATA: the entry has no such attribute).
type XattrValue struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
	Errno uint32 `json:"errno,omitempty"`
}

// Size is the number of bytes of names and values x carries, for
// XattrDirBudget.
func (x *EntryXattrs) Size() int {
	n := 0
	for _, s := range x.Names {
		n += len(s) + 1
	}
	for _, v := range x.Values {
		n += len(v.Value)
	}
	return n
}

// AppendXattrDirRequest appends the payload of READDIR_PLUS_XATTR: max
// entries (u32, 0: the server's default), then each name as a length byte
// and its bytes.
func AppendXattrDirRequest(b []byte, max uint32, names []string) []byte {
	b = binary.LittleEndian.AppendUint32(b, max)
	for _, n := range names {
		b = append(b, byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// DecodeXattrDirRequest decodes READDIR_PLUS_XATTR's payload. A payload
// that is short, names an empty name or over MaxXattrDirNames names is an
// error wrapping ErrBadFrame (the server answers EINVAL).
func DecodeXattrDirRequest(b []byte) (max uint32, names []string, err error) {
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("%w: short readdir_plus_xattr payload", ErrBadFrame)
	}
	max = binary.LittleEndian.Uint32(b)
	b = b[4:]
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n {
			return 0, nil, fmt.Errorf("%w: bad xattr name in readdir_plus_xattr payload", ErrBadFrame)
		}
		if len(names) == MaxXattrDirNames {
			return 0, nil, fmt.Errorf("%w: more than %d xattr names", ErrBadFrame, MaxXattrDirNames)
		}
		names = append(names, string(b[1:1+n]))
		b = b[1+n:]
	}
	return max, names, nil
}

// AppendEntryXattrs appends an entry's xattr block: errno (u32), the
// length of the names (u32) and the names, each followed by a NUL (as
// listxattr(2) returns them); then, for each requested name, errno (u32),
// value length (u32) and the value.
func AppendEntryXattrs(b []byte, x *EntryXattrs) []byte {
	b = binary.LittleEndian.AppendUint32(b, x.Errno)
	n := 0
	for _, s := range x.Names {
		n += len(s) + 1
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, s := range x.Names {
		b = append(b, s...)
		b = append(b, 0)
	}
	for _, v := range x.Values {
		b = binary.LittleEndian.AppendUint32(b, v.Errno)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v.Value)))
		b = append(b, v.Value...)
	}
	return b
}

// decodeEntryXattrs decodes one xattr block with nvals values from b and
// returns the bytes it took.
func decodeEntryXattrs(b []byte, names []string) (*EntryXattrs, int, error) {
	short := fmt.Errorf("%w: short xattr block", ErrBadFrame)
	if len(b) < 8 {
		return nil, 0, short
	}
	x := &EntryXattrs{Errno: binary.LittleEndian.Uint32(b), Names: []string{}}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	pos := 8
	if len(b)-pos < n {
		return nil, 0, short
	}
	list := b[pos : pos+n]
	pos += n
	for len(list) > 0 {
		i := 0
		for i < len(list) && list[i] != 0 {
			i++
		}
		if i == 0 || i == len(list) {
			return nil, 0, fmt.Errorf("%w: bad xattr name list", ErrBadFrame)
		}
		x.Names = append(x.Names, string(list[:i]))
		list = list[i+1:]
	}
	x.Values = make([]XattrValue, len(names))
	for k := range names {
		if len(b)-pos < 8 {
			return nil, 0, short
		}
		v := XattrValue{Name: names[k], Errno: binary.LittleEndian.Uint32(b[pos:])}
		m := int(binary.LittleEndian.Uint32(b[pos+4:]))
		pos += 8
		if len(b)-pos < m {
			return nil, 0, short
		}
		v.Value = append([]byte{}, b[pos:pos+m]...)
		pos += m
		x.Values[k] = v
	}
	return x, pos, nil
}

// DecodeReaddirPlusXattr decodes a READDIR_PLUS_XATTR reply payload, for
// a request with flags that asked for names.
func DecodeReaddirPlusXattr(b []byte, flags uint32, names []string) (entries []DirEntry, eof bool, err error) {
	return decodeDirEntries(b, flags, true, names)
}
