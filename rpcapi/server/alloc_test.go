package server_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestAllocExamples sends the literal fallocate/lseek and STAT_EXT
// examples of PROTOCOL.md (with the real mount id).
func TestAllocExamples(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	var cr wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/hello.txt", "mode": 0o644}, &cr)
	if cr.Inode != 2 {
		t.Fatalf("first file is inode %d", cr.Inode)
	}
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": 2, "offset": 0, "data": []byte("hello world")}, nil)

	// GET_STAT with STAT_EXT.
	bc := dialBin(t, "tcp", d.TCPAddr)
	req := unhex(t, `
50 46 53 42  01 00  04 00  09 00 00 00 00 00 00 00     magic, version 1, GET_STAT, id 9
2d ce d8 18 01 00 00 00  02 00 00 00 00 00 00 00        mount id, inode 2
00 00 00 00 00 00 00 00  00 00 00 00  01 00 00 00        offset 0, length 0, flags STAT_EXT
`)
	binary.LittleEndian.PutUint64(req[16:], id)
	bc.write(req)
	h, data := bc.reply()
	if h.Errno != 0 || h.Length != 136 || len(data) != 136 {
		t.Fatalf("GET_STAT STAT_EXT: %+v, %d bytes", h, len(data))
	}
	if !bytes.Equal(data[120:], unhex(t, "01 00 00 00 00 00 00 00  00 10 00 00 00 00 00 00")) {
		t.Errorf("blocks, blksize: % x", data[120:])
	}
	st, err := wire.DecodeStatExt(data)
	var js wire.StatResult
	rc.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": 2}, &js)
	if err != nil || st != js.Stat {
		t.Errorf("binary %+v %v, JSON %+v", st, err, js.Stat)
	}

	// The fallocate/lseek example on a 1 MiB file.
	rc.ok(wire.MethodWrite, obj{"mount_id": id, "inode": 2, "offset": 0, "data": bytes.Repeat([]byte("x"), 1<<20)}, nil)
	for _, ex := range []struct{ req, rep string }{
		{`{"jsonrpc":"2.0","id":9,"method":"fallocate","params":{"mount_id":%d,"inode":2,"mode":3,"offset":262144,"length":524288}}`,
			`{"jsonrpc":"2.0","id":9,"result":{}}`},
		{`{"jsonrpc":"2.0","id":10,"method":"lseek","params":{"mount_id":%d,"inode":2,"offset":0,"whence":"hole"}}`,
			`{"jsonrpc":"2.0","id":10,"result":{"offset":262144}}`},
		{`{"jsonrpc":"2.0","id":11,"method":"lseek","params":{"mount_id":%d,"inode":2,"offset":300000,"whence":"data"}}`,
			`{"jsonrpc":"2.0","id":11,"result":{"offset":786432}}`},
	} {
		rc.sendRaw(fmt.Sprintf(ex.req, id))
		sameJSON(t, ex.req, mustMarshal(rc.recv()), ex.rep)
	}
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":12,"method":"lseek","params":{"mount_id":%d,"inode":2,"offset":1048576,"whence":"data"}}`, id))
	rc.checkErr(rc.recv(), "lseek", "ENXIO", 6)
	rc.fails(wire.MethodLseek, obj{"mount_id": id, "inode": 2, "offset": 0, "whence": "middle"}, "EINVAL", -32602)
	rc.fails(wire.MethodFallocate, obj{"mount_id": id, "inode": 2, "mode": 2, "offset": 0, "length": 1}, "ENOTSUP", 95)
	// The copy_range example: inode 3 gets 4096 bytes of inode 2 at 8192.
	var c3 wire.NewInodeResult
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/copy", "mode": 0o644}, &c3)
	if c3.Inode != 3 {
		t.Fatalf("second file is inode %d", c3.Inode)
	}
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":13,"method":"copy_range","params":{"mount_id":%d,"src_inode":2,"src_offset":0,"dst_inode":3,"dst_offset":8192,"length":4096}}`, id))
	sameJSON(t, "copy_range", mustMarshal(rc.recv()), `{"jsonrpc":"2.0","id":13,"result":{"size":4096}}`)
	var rr wire.ReadResult
	rc.ok(wire.MethodRead, obj{"mount_id": id, "inode": 3, "offset": 0, "length": 20000}, &rr)
	if len(rr.Data) != 8192+4096 || !bytes.Equal(rr.Data[:8192], make([]byte, 8192)) || !bytes.Equal(rr.Data[8192:], bytes.Repeat([]byte("x"), 4096)) {
		t.Errorf("copy_range result: %d bytes", len(rr.Data))
	}
	// The realpath example: /l -> d/f (the inode is whatever /d/f got).
	var dr, fr wire.NewInodeResult
	rc.ok(wire.MethodMkdirPath, obj{"mount_id": id, "path": "/d", "mode": 0o755}, &dr)
	rc.ok(wire.MethodCreatePath, obj{"mount_id": id, "path": "/d/f", "mode": 0o644}, &fr)
	rc.ok(wire.MethodSymlinkPath, obj{"mount_id": id, "path": "/l", "target": "d/f"}, nil)
	rc.sendRaw(fmt.Sprintf(`{"jsonrpc":"2.0","id":14,"method":"realpath","params":{"mount_id":%d,"path":"//l"}}`, id))
	sameJSON(t, "realpath", mustMarshal(rc.recv()), fmt.Sprintf(`{"jsonrpc":"2.0","id":14,"result":{"path":"/d/f","inode":%d}}`, fr.Inode))
	var fs wire.StatResult
	rc.ok(wire.MethodGetStatPath, obj{"mount_id": id, "path": "/l", "follow": true}, &fs)
	if fs.Stat.Ino != fr.Inode {
		t.Errorf("get_stat_path follow: %+v", fs.Stat)
	}
	rc.ok(wire.MethodGetStatPath, obj{"mount_id": id, "path": "/l"}, &fs)
	if fs.Stat.Mode&0o170000 != 0o120000 {
		t.Errorf("get_stat_path without follow: %+v", fs.Stat)
	}
	ro := rc.mount("default", wire.MountReadOnly).MountID
	rc.fails(wire.MethodCopyRange, obj{"mount_id": ro, "src_inode": 2, "src_offset": 0, "dst_inode": 3, "dst_offset": 0, "length": 1}, "EROFS", 30)
	rc.fails(wire.MethodFallocate, obj{"mount_id": ro, "inode": 2, "mode": 0, "offset": 0, "length": 1}, "EROFS", 30)
	rc.ok(wire.MethodLseek, obj{"mount_id": ro, "inode": 2, "offset": 0, "whence": "data"}, nil)
}
