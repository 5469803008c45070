package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

// unhex decodes the hex dumps of PROTOCOL.md (spaces, newlines and
// trailing comments allowed).
func unhex(t testing.TB, dump string) []byte {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(dump, "\n") {
		for _, f := range strings.Fields(line) {
			if len(f) != 2 {
				break // the comment starts
			}
			b.WriteString(f)
		}
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The literal example of PROTOCOL.md section 2.
const protocolWrite = `
50 46 53 42  01 00  02 00  07 00 00 00 00 00 00 00     magic, version 1, WRITE, id 7
2d ce d8 18 01 00 00 00  02 00 00 00 00 00 00 00        mount id, inode 2
00 00 00 00 00 00 00 00  05 00 00 00  00 00 00 00        offset 0, length 5, flags 0
68 65 6c 6c 6f                                          "hello"
`

const protocolReply = `
50 46 53 52  01 00  02 00  07 00 00 00 00 00 00 00     magic, version 1, WRITE, id 7
00 00 00 00  00 00 00 00  05 00 00 00  00 00 00 00     errno 0, flags 0, length 5, reserved
`

func TestProtocolExample(t *testing.T) {
	frame := unhex(t, protocolWrite)
	want := RequestHeader{Opcode: OpWrite, ID: 7, MountID: 4711829037, Inode: 2, Offset: 0, Length: 5}
	h, err := DecodeRequest(frame)
	if err != nil || h != want {
		t.Fatalf("decode: %+v %v", h, err)
	}
	if got := AppendRequest(nil, want); !bytes.Equal(got, frame[:RequestHeaderSize]) {
		t.Fatalf("encode:\n%x\n%x", got, frame[:RequestHeaderSize])
	}
	if string(frame[RequestHeaderSize:]) != "hello" {
		t.Fatalf("payload %q", frame[RequestHeaderSize:])
	}
	reply := unhex(t, protocolReply)
	rh, err := DecodeReply(reply)
	if err != nil || rh != (ReplyHeader{Opcode: OpWrite, ID: 7, Length: 5}) {
		t.Fatalf("decode reply: %+v %v", rh, err)
	}
	if got := AppendReply(nil, rh); !bytes.Equal(got, reply) {
		t.Fatalf("encode reply:\n%x\n%x", got, reply)
	}
	// Flags go at offset 20; the last four bytes stay reserved (0).
	flagged := AppendReply(nil, ReplyHeader{Opcode: OpRead, ID: 1, Flags: 1, Length: 3})
	if got := flagged[20:24]; !bytes.Equal(got, []byte{1, 0, 0, 0}) {
		t.Errorf("flags bytes %x", got)
	}
	if got := flagged[28:32]; !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("reserved bytes %x, want zeros", got)
	}
}

func TestBadFrames(t *testing.T) {
	good := AppendRequest(nil, RequestHeader{Opcode: OpRead, ID: 1, Length: 10})
	mutate := func(off int, b byte) []byte {
		c := append([]byte(nil), good...)
		c[off] = b
		return c
	}
	cases := map[string][]byte{
		"short":   good[:47],
		"magic":   mutate(0, 'X'),
		"version": mutate(4, 2),
		"opcode":  mutate(6, 0xee),
		"opcode0": mutate(6, 0),
		"flags":   mutate(44, 8),
		"json":    []byte(`Content-Length: 10` + "\r\n\r\n" + strings.Repeat(" ", 40)),
	}
	for name, b := range cases {
		if _, err := DecodeRequest(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
	if _, err := DecodeReply(good[:31]); !errors.Is(err, ErrBadFrame) {
		t.Errorf("short reply: %v", err)
	}
	if _, err := ReadRequest(bytes.NewReader(good[:20]), new([RequestHeaderSize]byte)); err == nil {
		t.Errorf("truncated stream read without error")
	}
}

func TestErrnoNames(t *testing.T) {
	for errno, name := range map[syscall.Errno]string{2: "ENOENT", 22: "EINVAL", 61: "ENODATA", 39: "ENOTEMPTY"} {
		if got := ErrnoName(errno); got != name {
			t.Errorf("ErrnoName(%d) = %q, want %q", errno, got, name)
		}
	}
	if got := ErrnoName(9999); got == "" {
		t.Errorf("unknown errno has an empty name")
	}
}

// FuzzDecodeRequest: any bytes either decode to a header that encodes back
// to the same bytes or fail with ErrBadFrame; never a panic.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(unhex(f, protocolWrite))
	f.Add(AppendRequest(nil, RequestHeader{Opcode: OpRead, ID: 1<<64 - 1, Length: 1<<32 - 1, Offset: 1 << 63}))
	f.Add([]byte("PFSB"))
	f.Add([]byte("Content-Length: 2\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v is not ErrBadFrame", err)
			}
			return
		}
		if again := AppendRequest(nil, h); !bytes.Equal(again, b[:RequestHeaderSize]) {
			t.Fatalf("round trip differs:\n%x\n%x", again, b[:RequestHeaderSize])
		}
	})
}

// FuzzDecodeReply: as FuzzDecodeRequest for replies.
func FuzzDecodeReply(f *testing.F) {
	f.Add(unhex(f, protocolReply))
	f.Add([]byte("PFSR\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeReply(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v is not ErrBadFrame", err)
			}
			return
		}
		again := AppendReply(nil, h)
		if !bytes.Equal(again[:28], b[:28]) {
			t.Fatalf("round trip differs:\n%x\n%x", again, b[:ReplyHeaderSize])
		}
	})
}

func TestStatAndDirEntryRecords(t *testing.T) {
	st := Stat{Ino: 1 << 52, Mode: 0o100644, Nlink: 3, UID: 1 << 31, GID: 7, Size: 1 << 40, Dev: 99,
		Atime: Timespec{Sec: -5, Nsec: 999999999}, Mtime: Timespec{Sec: 1, Nsec: 2},
		Ctime: Timespec{Sec: 3, Nsec: 4}, Crtime: Timespec{Sec: 1 << 40, Nsec: 6}}
	b := AppendStat(nil, &st)
	if len(b) != StatSize {
		t.Fatalf("stat record of %d bytes", len(b))
	}
	if got, err := DecodeStat(b); err != nil || got != st {
		t.Fatalf("stat round trip: %+v %v", got, err)
	}
	if _, err := DecodeStat(b[:StatSize-1]); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("short stat: %v", err)
	}
	ents := []DirEntry{{Name: ".", Inode: 1, Type: 4, Cookie: 1, Stat: &st}, {Name: strings.Repeat("é", 127), Inode: 5, Type: 8, Cookie: -7, Stat: &st}}
	p := []byte{1}
	for i := range ents {
		p = AppendDirEntry(p, &ents[i])
	}
	got, eof, err := DecodeReaddirPlus(p)
	if err != nil || !eof || len(got) != 2 || got[1].Name != ents[1].Name || got[1].Cookie != -7 || *got[1].Stat != st {
		t.Fatalf("readdir_plus round trip: %+v %v %v", got, eof, err)
	}
	if _, _, err := DecodeReaddirPlus(p[:len(p)-1]); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("truncated readdir_plus: %v", err)
	}
	for op := uint16(OpRead); op <= OpFlush; op++ {
		if OpName(op) == "" {
			t.Errorf("opcode %d has no name", op)
		}
	}
}

// A per-call identity round-trips through AppendRequest and ReadRequest,
// and a block that breaks the rules breaks the stream.
func TestIdentityBlock(t *testing.T) {
	id := &Identity{UID: 1001, GID: 1001, Groups: []uint32{100, 1001}}
	b := AppendRequest(nil, RequestHeader{Opcode: OpRead, ID: 8, MountID: 4711829037, Inode: 2, Length: 6, As: id})
	// PROTOCOL.md's example, byte for byte.
	want := []byte{0x50, 0x46, 0x53, 0x42, 0x01, 0x00, 0x01, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0,
		0x2d, 0xce, 0xd8, 0x18, 0x01, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0, 0, 0x02, 0, 0, 0,
		0xe9, 0x03, 0, 0, 0xe9, 0x03, 0, 0, 0x02, 0x00, 0x00, 0x00,
		0x64, 0, 0, 0, 0xe9, 0x03, 0, 0}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got % x\nwant % x", b, want)
	}
	h, err := ReadRequest(bytes.NewReader(b), new([RequestHeaderSize]byte))
	if err != nil || h.As == nil || h.As.UID != 1001 || h.As.GID != 1001 || len(h.As.Groups) != 2 || h.As.Groups[1] != 1001 ||
		h.Flags != RequestFlagIdentity || h.Length != 6 {
		t.Fatalf("decoded %+v %+v %v", h, h.As, err)
	}
	for name, mutate := range map[string]func([]byte){
		"33 groups": func(b []byte) { b[RequestHeaderSize+8] = 33 },
		"reserved":  func(b []byte) { b[RequestHeaderSize+10] = 1 },
	} {
		c := bytes.Clone(b)
		mutate(c)
		if _, err := ReadRequest(bytes.NewReader(c), new([RequestHeaderSize]byte)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
	if _, err := ReadRequest(bytes.NewReader(b[:RequestHeaderSize+14]), new([RequestHeaderSize]byte)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated identity: %v", err)
	}
}
