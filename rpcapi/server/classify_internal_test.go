package server

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/lock"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// TestClassify is the table of the one place where errors become what the
// wire reports: code, errno, data.reason.
func TestClassify(t *testing.T) {
	s := &Server{log: zap.NewNop()}
	for _, c := range []struct {
		name   string
		err    error
		code   int64
		errno  syscall.Errno
		reason string
	}{
		{"invalid params", errParams("x"), -32602, syscall.EINVAL, ""},
		{"unknown method", errMethod("nope"), -32601, syscall.ENOSYS, ""},
		{"bad mount", &mount.BadMountError{ID: 7}, 22, syscall.EINVAL, wire.ReasonBadMount},
		{"wrapped bad mount", fmt.Errorf("lookup: %w", &mount.BadMountError{ID: 7}), 22, syscall.EINVAL, wire.ReasonBadMount},
		{"bare errno", syscall.ENOENT, 2, syscall.ENOENT, ""},
		{"wrapped errno", fmt.Errorf("create %q: %w", "x", syscall.EEXIST), 17, syscall.EEXIST, ""},
		{"no such volume", &mount.NoVolumeError{Volume: "v"}, 2, syscall.ENOENT, ""},
		{"too many mounts", &mount.TooManyMountsError{Max: 1}, 24, syscall.EMFILE, ""},
		{"lock conflict", conflict("lock", syscall.EAGAIN), 11, syscall.EAGAIN, ""},
		{"lock grace", lock.ErrGrace, 11, syscall.EAGAIN, wire.ReasonGrace},
		{"lock no grace", fmt.Errorf("reclaim: %w", lock.ErrNoGrace), 37, syscall.ENOLCK, wire.ReasonNoGrace},
		{"in-flight limit", &reasonError{reason: wire.ReasonBusy, err: fmt.Errorf("limit: %w", syscall.EAGAIN)}, 11, syscall.EAGAIN, wire.ReasonBusy},
		{"deadlock", fmt.Errorf("lock: %w", syscall.EDEADLK), 35, syscall.EDEADLK, ""},
		{"no errno: a bug, EIO", errors.New("surprise"), 5, syscall.EIO, ""},
		{"errno 0 is not an errno", syscall.Errno(0), 5, syscall.EIO, ""},
	} {
		w := s.classify("op", c.err)
		d := w.data()
		if w.code != c.code || w.errno != c.errno || d.Reason != c.reason || d.Errno != int(c.errno) || d.Name != wire.ErrnoName(c.errno) {
			t.Errorf("%s: code %d errno %v data %+v; want code %d errno %v reason %q", c.name, w.code, w.errno, d, c.code, c.errno, c.reason)
		}
		if w.msg == "" {
			t.Errorf("%s: no message", c.name)
		}
	}
}
