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
// method, it forwards the next request of that method, gives the daemon
// time to execute it, and then breaks the connection before the reply can
// reach the client: the client cannot know whether the call happened.
type dropProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	arm   map[string]bool
	drops int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{t: t, ln: ln, target: target, arm: map[string]bool{}, conns: map[net.Conn]bool{}}
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

func (p *dropProxy) armFor(method string) {
	p.mu.Lock()
	p.arm[method] = true
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
				if err != nil || cut.Load() {
					return
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

// readFrame reads one Content-Length frame, or (for a binary channel)
// whatever is buffered.
func readFrame(br *bufio.Reader) ([]byte, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, err
	}
	if string(magic) == wire.RequestMagic || string(magic) == wire.ReplyMagic {
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
// client any more, and after it the connection is closed.
func (p *dropProxy) forward(br *bufio.Reader, sc net.Conn, cut *atomic.Bool) {
	for {
		frame, err := readFrame(br)
		if err != nil {
			return
		}
		var req struct {
			Method string `json:"method"`
		}
		if i := strings.Index(string(frame), "\r\n\r\n"); i >= 0 && !strings.HasPrefix(string(frame), wire.RequestMagic) {
			_ = json.Unmarshal(frame[i+4:], &req)
		}
		p.mu.Lock()
		drop := req.Method != "" && p.arm[req.Method]
		delete(p.arm, req.Method)
		if drop {
			p.drops++
			cut.Store(true)
		}
		p.mu.Unlock()
		if _, err := sc.Write(frame); err != nil {
			return
		}
		if drop {
			time.Sleep(100 * time.Millisecond) // the daemon executes it
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
}
