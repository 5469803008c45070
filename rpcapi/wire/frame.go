package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Binary channel constants.
const (
	// RequestMagic starts every request frame ("PFSB").
	RequestMagic = "PFSB"
	// ReplyMagic starts every reply frame ("PFSR").
	ReplyMagic = "PFSR"
	// RequestHeaderSize is the size of a request header in bytes.
	RequestHeaderSize = 48
	// ReplyHeaderSize is the size of a reply header in bytes.
	ReplyHeaderSize = 32

	// OpRead reads Length bytes at Offset.
	OpRead = 1
	// OpWrite writes the Length payload bytes that follow the header.
	OpWrite = 2

	// ReplyFlagBadMount is set in ReplyHeader.Flags when the mount id is
	// bad or stale.
	ReplyFlagBadMount = 1
)

// ErrBadFrame is returned for a frame that breaks the stream: a wrong
// magic, an unknown version or opcode, or nonzero flags.
var ErrBadFrame = errors.New("wire: malformed binary frame")

// RequestHeader is a binary-channel request header.
type RequestHeader struct {
	Opcode  uint16
	ID      uint64
	MountID uint64
	Inode   uint64
	Offset  uint64
	Length  uint32
}

// ReplyHeader is a binary-channel reply header.
type ReplyHeader struct {
	Opcode uint16
	ID     uint64
	Errno  uint32
	Flags  uint32
	Length uint32
}

// AppendRequest appends h's encoding to b.
func AppendRequest(b []byte, h RequestHeader) []byte {
	b = append(b, RequestMagic...)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = binary.LittleEndian.AppendUint16(b, h.Opcode)
	b = binary.LittleEndian.AppendUint64(b, h.ID)
	b = binary.LittleEndian.AppendUint64(b, h.MountID)
	b = binary.LittleEndian.AppendUint64(b, h.Inode)
	b = binary.LittleEndian.AppendUint64(b, h.Offset)
	b = binary.LittleEndian.AppendUint32(b, h.Length)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return b
}

// DecodeRequest decodes a request header from the first RequestHeaderSize
// bytes of b. It returns an error wrapping ErrBadFrame if the frame breaks
// the stream.
func DecodeRequest(b []byte) (RequestHeader, error) {
	if len(b) < RequestHeaderSize {
		return RequestHeader{}, fmt.Errorf("%w: short header (%d bytes)", ErrBadFrame, len(b))
	}
	if string(b[0:4]) != RequestMagic {
		return RequestHeader{}, fmt.Errorf("%w: magic %q", ErrBadFrame, b[0:4])
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != Version {
		return RequestHeader{}, fmt.Errorf("%w: version %d", ErrBadFrame, v)
	}
	h := RequestHeader{
		Opcode:  binary.LittleEndian.Uint16(b[6:]),
		ID:      binary.LittleEndian.Uint64(b[8:]),
		MountID: binary.LittleEndian.Uint64(b[16:]),
		Inode:   binary.LittleEndian.Uint64(b[24:]),
		Offset:  binary.LittleEndian.Uint64(b[32:]),
		Length:  binary.LittleEndian.Uint32(b[40:]),
	}
	if h.Opcode != OpRead && h.Opcode != OpWrite {
		return RequestHeader{}, fmt.Errorf("%w: opcode %d", ErrBadFrame, h.Opcode)
	}
	if f := binary.LittleEndian.Uint32(b[44:]); f != 0 {
		return RequestHeader{}, fmt.Errorf("%w: flags %#x", ErrBadFrame, f)
	}
	return h, nil
}

// AppendReply appends h's encoding to b.
func AppendReply(b []byte, h ReplyHeader) []byte {
	b = append(b, ReplyMagic...)
	b = binary.LittleEndian.AppendUint16(b, Version)
	b = binary.LittleEndian.AppendUint16(b, h.Opcode)
	b = binary.LittleEndian.AppendUint64(b, h.ID)
	b = binary.LittleEndian.AppendUint32(b, h.Errno)
	b = binary.LittleEndian.AppendUint32(b, h.Flags)
	b = binary.LittleEndian.AppendUint32(b, h.Length)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return b
}

// DecodeReply decodes a reply header from the first ReplyHeaderSize bytes
// of b.
func DecodeReply(b []byte) (ReplyHeader, error) {
	if len(b) < ReplyHeaderSize {
		return ReplyHeader{}, fmt.Errorf("%w: short reply header (%d bytes)", ErrBadFrame, len(b))
	}
	if string(b[0:4]) != ReplyMagic {
		return ReplyHeader{}, fmt.Errorf("%w: reply magic %q", ErrBadFrame, b[0:4])
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != Version {
		return ReplyHeader{}, fmt.Errorf("%w: reply version %d", ErrBadFrame, v)
	}
	return ReplyHeader{
		Opcode: binary.LittleEndian.Uint16(b[6:]),
		ID:     binary.LittleEndian.Uint64(b[8:]),
		Errno:  binary.LittleEndian.Uint32(b[16:]),
		Flags:  binary.LittleEndian.Uint32(b[20:]),
		Length: binary.LittleEndian.Uint32(b[24:]),
	}, nil
}

// ReadRequest reads one request header from r.
func ReadRequest(r io.Reader, buf *[RequestHeaderSize]byte) (RequestHeader, error) {
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return RequestHeader{}, err
	}
	return DecodeRequest(buf[:])
}

// ReadReply reads one reply header from r.
func ReadReply(r io.Reader, buf *[ReplyHeaderSize]byte) (ReplyHeader, error) {
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return ReplyHeader{}, err
	}
	return DecodeReply(buf[:])
}
