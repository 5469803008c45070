package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// dropProxy forwards connections to the daemon. When armed for a JSON-RPC
// method (or the method of a binary opcode, wire.OpName), it forwards the next request of that method, gives the daemon
// time to execute it, runs the hook armed with it (another client acting
// in between), and then breaks the connection before the reply can reach
// the client: the client cannot know whether the call happened. Requests
// of a killed method are never forwarded: their connection breaks.
type dropProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	arm   map[string]func()
	kill  map[string]bool
	drops int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{t: t, ln: ln, target: target, arm: map[string]func(){}, kill: map[string]bool{}, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *dropProxy) addr() string { return p.ln.Addr().String() }

func (p *dropProxy) armFor(method string) { p.armWith(method, func() {}) }

func (p *dropProxy) armWith(method string, hook func()) {
	p.mu.Lock()
	p.arm[method] = hook
	p.mu.Unlock()
}

func (p *dropProxy) killFor(method string, on bool) {
	p.mu.Lock()
	p.kill[method] = on
	p.mu.Unlock()
}

func (p *dropProxy) dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drops
}

func (p *dropProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.conns[c] = true
	}
	p.mu.Unlock()
}

func (p *dropProxy) accept() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.target)
		if err != nil {
			cc.Close()
			continue
		}
		p.track(cc, sc)
		cut := new(atomic.Bool)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer cc.Close()
			br := bufio.NewReader(sc)
			for {
				frame, err := readFrame(br)
				if err != nil {
					return
				}
				if cut.Load() {
					continue // lost; forward closes the connection
				}
				if _, err := cc.Write(frame); err != nil {
					return
				}
			}
		}()
		go func() {
			defer p.wg.Done()
			defer sc.Close()
			defer cc.Close()
			p.forward(bufio.NewReader(cc), sc, cut)
		}()
	}
}

// readFrame reads one Content-Length frame, one binary request frame, or
// (for binary replies) whatever is buffered.
func readFrame(br *bufio.Reader) ([]byte, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, err
	}
	if string(magic) == wire.RequestMagic {
		return readBinaryRequest(br)
	}
	if string(magic) == wire.ReplyMagic {
		buf := make([]byte, max(br.Buffered(), 1))
		n, err := br.Read(buf)
		return buf[:n], err
	}
	var frame []byte
	length := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		frame = append(frame, line...)
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return nil, errors.New("no Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	return append(frame, body...), nil
}

// forward copies client-to-server traffic frame by frame. Before it
// forwards an armed request it sets cut, so that no reply reaches the
// client any more, and after it (and its hook) the connection is closed.
func (p *dropProxy) forward(br *bufio.Reader, sc net.Conn, cut *atomic.Bool) {
	for {
		frame, err := readFrame(br)
		if err != nil {
			return
		}
		var req struct {
			Method string `json:"method"`
		}
		if strings.HasPrefix(string(frame), wire.RequestMagic) {
			if h, err := wire.DecodeRequest(frame[:wire.RequestHeaderSize]); err == nil {
				req.Method = wire.OpName(h.Opcode)
			}
		} else if i := strings.Index(string(frame), "\r\n\r\n"); i >= 0 {
			_ = json.Unmarshal(frame[i+4:], &req)
		}
		p.mu.Lock()
		hook, drop := p.arm[req.Method]
		drop = drop && req.Method != ""
		delete(p.arm, req.Method)
		if drop {
			p.drops++
			cut.Store(true)
		}
		kill := p.kill[req.Method]
		p.mu.Unlock()
		if kill {
			return // the request is lost with the connection
		}
		if _, err := sc.Write(frame); err != nil {
			return
		}
		if drop {
			time.Sleep(100 * time.Millisecond) // the daemon executes it,
			hook()                             // another client acts,
			return                             // and the reply is lost
		}
	}
}

// TestDaemonUncertainRetries checks the package's rule for non-idempotent
// calls whose first attempt was executed but whose reply was lost: the
// retry's EEXIST / ENOENT / ENODATA is reported as success, and the same
// call without a lost reply reports the errno.
func TestDaemonUncertainRetries(t *testing.T) {
	d := startDaemon(t)
	p := newDropProxy(t, d.tcp())
	_, m := dialMount(t, p.addr(), alice, WithConns(1, 1), WithBackoff(time.Millisecond, 10*time.Millisecond))
	ctx := context.Background()
	root := m.RootInode()

	// uncertain runs call with the reply of method lost, expecting
	// success, then runs it again normally, expecting errno (0: success).
	uncertain := func(method string, errno syscall.Errno, call func() error) {
		t.Helper()
		before := p.dropped()
		p.armFor(method)
		if err := call(); err != nil {
			t.Errorf("%s with lost reply: %v", method, err)
		}
		if p.dropped() != before+1 {
			t.Errorf("%s: the proxy did not drop a reply", method)
		}
		err := call()
		switch {
		case errno == 0 && err != nil:
			t.Errorf("%s again: %v", method, err)
		case errno != 0:
			wantErrno(t, method+" again", err, errno)
		}
	}
	statErr := func(_ Stat, err error) error { return err }

	uncertain(wire.MethodCreate, syscall.EEXIST, func() error { return statErr(m.Create(ctx, root, "c", 0o644)) })
	uncertain(wire.MethodCreatePath, syscall.EEXIST, func() error { return statErr(m.CreatePath(ctx, "cp", 0o644)) })
	uncertain(wire.MethodMkdir, syscall.EEXIST, func() error { return statErr(m.Mkdir(ctx, root, "d", 0o755)) })
	uncertain(wire.MethodMkdirPath, syscall.EEXIST, func() error { return statErr(m.MkdirPath(ctx, "d/dp", 0o755)) })
	uncertain(wire.MethodSymlink, syscall.EEXIST, func() error { return statErr(m.Symlink(ctx, root, "s", "c")) })
	uncertain(wire.MethodSymlinkPath, syscall.EEXIST, func() error { return statErr(m.SymlinkPath(ctx, "d/sp", "/c")) })
	c := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "c"))
	uncertain(wire.MethodLink, syscall.EEXIST, func() error { return m.Link(ctx, root, "c-link", c.Ino) })
	uncertain(wire.MethodLinkPath, syscall.EEXIST, func() error { return m.LinkPath(ctx, "cp", "d/cp-link") })
	if st := must[Stat](t, "GetStat")(m.GetStat(ctx, c.Ino)); st.Nlink != 2 {
		t.Errorf("nlink after uncertain link: %d", st.Nlink)
	}
	uncertain(wire.MethodSetXattr, syscall.EEXIST, func() error { return m.SetXattr(ctx, c.Ino, "user.a", []byte("v"), wire.XattrCreate) })
	uncertain(wire.MethodSetXattrPath, syscall.EEXIST, func() error { return m.SetXattrPath(ctx, "cp", "user.b", []byte("w"), wire.XattrCreate) })
	uncertain(wire.MethodRemoveXattr, syscall.ENODATA, func() error { return m.RemoveXattr(ctx, c.Ino, "user.a") })
	uncertain(wire.MethodRemoveXattrPath, syscall.ENODATA, func() error { return m.RemoveXattrPath(ctx, "cp", "user.b") })
	uncertain(wire.MethodRename, syscall.ENOENT, func() error { return m.Rename(ctx, root, "c", root, "c2") })
	uncertain(wire.MethodRenamePath, syscall.ENOENT, func() error { return m.RenamePath(ctx, "c2", "d/c3") })
	uncertain(wire.MethodUnlink, syscall.ENOENT, func() error { return m.Unlink(ctx, root, "c-link") })
	uncertain(wire.MethodUnlinkPath, syscall.ENOENT, func() error { return m.UnlinkPath(ctx, "d/c3") })
	uncertain(wire.MethodRmdirPath, syscall.ENOENT, func() error { return m.RmdirPath(ctx, "d/dp") })
	must[Stat](t, "Mkdir")(m.Mkdir(ctx, root, "e", 0o755))
	uncertain(wire.MethodRmdir, syscall.ENOENT, func() error { return m.Rmdir(ctx, root, "e") })
	// Idempotent calls are simply retried.
	uncertain(wire.MethodChmodPath, 0, func() error { return m.ChmodPath(ctx, "cp", 0o600) })
	uncertain(wire.MethodResizePath, 0, func() error { return m.ResizePath(ctx, "cp", 10) })

	// Not ours: an EEXIST for an entry of another type is reported even
	// after a lost reply.
	p.armFor(wire.MethodMkdirPath)
	if _, err := m.MkdirPath(ctx, "cp", 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("uncertain mkdir over a file: %v, want EEXIST", err)
	}
	p.armFor(wire.MethodSymlinkPath)
	if _, err := m.SymlinkPath(ctx, "s", "other-target"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("uncertain symlink over another symlink: %v, want EEXIST", err)
	}

	// The namespace is as expected.
	all, err := m.ReadDirAll(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sorted(entryNames(all))); got != "[. .. cp d s]" {
		t.Errorf("root: %s", got)
	}
	all, err = m.ReadDirAll(ctx, must[uint64](t, "LookupPath")(m.LookupPath(ctx, "d")))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sorted(entryNames(all))); got != "[. .. cp-link sp]" {
		t.Errorf("d: %s", got)
	}

	// In a setgid directory of a group alice is not in, her new entries
	// take that group, and her new directories the setgid bit: they are
	// still found to be her own.
	_, admin := dialMount(t, d.tcp(), MountOptions{User: "admin"})
	g := must[Stat](t, "MkdirPath g")(m.MkdirPath(ctx, "g", 0o777))
	must[Stat](t, "setgid g")(admin.SetAttrPath(ctx, "g", Attrs{Mask: wire.SetGID | wire.SetMode, GID: 4242, Mode: 0o2777}))
	uncertain(wire.MethodCreate, syscall.EEXIST, func() error { return statErr(m.Create(ctx, g.Ino, "f", 0o644)) })
	uncertain(wire.MethodMkdirPath, syscall.EEXIST, func() error { return statErr(m.MkdirPath(ctx, "g/sub", 0o755)) })
	if st := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "g/sub")); st.UID != alice.UID || st.GID != 4242 || st.Mode&0o7777 != 0o2755 {
		t.Errorf("g/sub: %+v", st)
	}
}

// TestDaemonUncertainOthers checks the other outcomes of the rule
// (PROTOCOL.md, "Retries"): when another client makes something else with
// the name between the lost reply and the retry, the retry's errno is
// reported; when the check cannot be made, EIO.
func TestDaemonUncertainOthers(t *testing.T) {
	d := startDaemon(t)
	p := newDropProxy(t, d.tcp())
	_, m := dialMount(t, p.addr(), alice, WithConns(1, 1), WithBackoff(time.Millisecond, 10*time.Millisecond),
		WithCallTimeout(3*time.Second))
	_, same := dialMount(t, d.tcp(), alice)
	_, bob := dialMount(t, d.tcp(), MountOptions{User: "bob", UID: 2000, GID: 2000})
	ctx := context.Background()
	must[Stat](t, "MkdirPath")(m.MkdirPath(ctx, "o", 0o777)) // bob works in it too
	f := must[Stat](t, "CreatePath")(m.CreatePath(ctx, "o/f", 0o644))
	must[Stat](t, "CreatePath")(m.CreatePath(ctx, "o/r1", 0o644))
	dir := must[uint64](t, "LookupPath")(m.LookupPath(ctx, "o"))

	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s (another client): %v", what, err)
		}
	}
	statErr := func(_ Stat, err error) error { return err }
	// other runs call with the reply of method lost and hook run in
	// between, and expects errno.
	other := func(method string, errno syscall.Errno, hook func(), call func() error) {
		t.Helper()
		before := p.dropped()
		p.armWith(method, hook)
		wantErrno(t, method, call(), errno)
		if p.dropped() != before+1 {
			t.Errorf("%s: the proxy did not drop a reply", method)
		}
	}

	other(wire.MethodCreatePath, syscall.EEXIST, func() { // a directory
		ok("UnlinkPath", same.UnlinkPath(ctx, "o/a"))
		ok("MkdirPath", statErr(same.MkdirPath(ctx, "o/a", 0o644)))
	}, func() error { return statErr(m.CreatePath(ctx, "o/a", 0o644)) })
	other(wire.MethodCreate, syscall.EEXIST, func() { // another user's file
		ok("UnlinkPath", bob.UnlinkPath(ctx, "o/b"))
		ok("CreatePath", statErr(bob.CreatePath(ctx, "o/b", 0o644)))
	}, func() error { return statErr(m.Create(ctx, dir, "b", 0o644)) })
	other(wire.MethodCreatePath, syscall.EEXIST, func() { // other permission bits
		ok("UnlinkPath", same.UnlinkPath(ctx, "o/b2"))
		ok("CreatePath", statErr(same.CreatePath(ctx, "o/b2", 0o600)))
	}, func() error { return statErr(m.CreatePath(ctx, "o/b2", 0o644)) })
	other(wire.MethodMkdir, syscall.EEXIST, func() { // another user's directory
		ok("RmdirPath", bob.RmdirPath(ctx, "o/c"))
		ok("MkdirPath", statErr(bob.MkdirPath(ctx, "o/c", 0o755)))
	}, func() error { return statErr(m.Mkdir(ctx, dir, "c", 0o755)) })
	other(wire.MethodSymlinkPath, syscall.EEXIST, func() { // another target
		ok("UnlinkPath", same.UnlinkPath(ctx, "o/s"))
		ok("SymlinkPath", statErr(same.SymlinkPath(ctx, "o/s", "elsewhere")))
	}, func() error { return statErr(m.SymlinkPath(ctx, "o/s", "f")) })
	other(wire.MethodLink, syscall.EEXIST, func() { // another inode
		ok("UnlinkPath", same.UnlinkPath(ctx, "o/l"))
		ok("CreatePath", statErr(same.CreatePath(ctx, "o/l", 0o644)))
	}, func() error { return m.Link(ctx, dir, "l", f.Ino) })
	other(wire.MethodSetXattrPath, syscall.EEXIST, func() { // another value
		ok("SetXattrPath", same.SetXattrPath(ctx, "o/f", "user.x", []byte("other"), 0))
	}, func() error { return m.SetXattrPath(ctx, "o/f", "user.x", []byte("mine"), wire.XattrCreate) })
	other(wire.MethodRenamePath, syscall.ENOENT, func() { // the destination is gone
		ok("UnlinkPath", same.UnlinkPath(ctx, "o/r2"))
	}, func() error { return m.RenamePath(ctx, "o/r1", "o/r2") })
	// The check cannot be made: its requests are lost again and again.
	other(wire.MethodCreatePath, syscall.EIO, func() { p.killFor(wire.MethodGetStatPath, true) },
		func() error { return statErr(m.CreatePath(ctx, "o/e", 0o644)) })
	p.killFor(wire.MethodGetStatPath, false)

	all, err := m.ReadDirAll(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sorted(entryNames(all))); got != "[. .. a b b2 c e f l s]" {
		t.Errorf("o: %s", got)
	}
}

// readBinaryRequest reads one binary request frame whole: the header, the
// identity and handle blocks its flags announce, and its payload.
func readBinaryRequest(br *bufio.Reader) ([]byte, error) {
	frame := make([]byte, wire.RequestHeaderSize)
	if _, err := io.ReadFull(br, frame); err != nil {
		return nil, err
	}
	h, err := wire.DecodeRequest(frame)
	if err != nil {
		return nil, err
	}
	more := func(n int) error {
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		frame = append(frame, b...)
		return nil
	}
	if h.Flags&wire.RequestFlagIdentity != 0 {
		if err := more(wire.IdentityHeadSize); err != nil {
			return nil, err
		}
		ngroups := int(frame[len(frame)-4]) | int(frame[len(frame)-3])<<8
		if err := more(4 * ngroups); err != nil {
			return nil, err
		}
	}
	if h.Flags&wire.RequestFlagHandle != 0 {
		if err := more(wire.HandleBlockSize); err != nil {
			return nil, err
		}
	}
	if wire.HasPayload(h.Opcode) {
		if err := more(int(h.Length)); err != nil {
			return nil, err
		}
	}
	return frame, nil
}
