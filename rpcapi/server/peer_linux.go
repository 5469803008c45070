package server

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// peerUID returns the user id of the process at the other end of a Unix
// socket (SO_PEERCRED: its credentials when it connected).
func peerUID(uc *net.UnixConn) (uint32, bool) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var (
		cred *syscall.Ucred
		cerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return cred.Uid, true
}

// soPeerGroups is Linux's SO_PEERGROUPS (since 4.13): the peer's
// supplementary groups when it connected.
const soPeerGroups = 59

// peerCred returns the credentials of the process at the other end of a
// Unix socket when it connected: SO_PEERCRED's uid and gid, and
// SO_PEERGROUPS's groups (none on a kernel without it).
func peerCred(uc *net.UnixConn) (peerCredentials, bool) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerCredentials{}, false
	}
	var (
		cred   *syscall.Ucred
		cerr   error
		groups []uint32
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if cerr != nil {
			return
		}
		buf := make([]uint32, 64)
		for {
			n := uint32(len(buf) * 4)
			_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_SOCKET, soPeerGroups,
				uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
			if e == syscall.ERANGE && int(n/4) > len(buf) && n <= 1<<20 {
				buf = make([]uint32, n/4)
				continue
			}
			if e == 0 {
				groups = buf[:n/4]
			}
			return
		}
	}); err != nil || cerr != nil {
		return peerCredentials{}, false
	}
	c := peerCredentials{uid: cred.Uid, gid: cred.Gid}
	for _, g := range groups {
		if g != c.gid {
			c.groups = append(c.groups, g)
		}
	}
	if c.uid != 0 && canBecomeRoot(raw, cred.Pid) {
		// A process whose real or saved uid is 0 (smbd acting for a
		// user, a setuid program) is root whenever it wants: it is
		// treated as root, not as the uid it happened to connect as.
		c.uid, c.gid = 0, 0
	}
	return c, true
}

// soPeerPidfd is Linux's SO_PEERPIDFD (since 6.5): a pidfd of the peer
// process, which tells whether that process is still the one with the pid.
const soPeerPidfd = 77

// canBecomeRoot reports whether the peer process (pid, from SO_PEERCRED)
// has uid 0 as its real or saved user id, read from /proc/<pid>/status.
// The peer's pidfd guards against a pid reused between the connect and
// the read: the answer counts only if the process the pidfd names is
// still alive after the read. Without SO_PEERPIDFD the answer is false.
func canBecomeRoot(raw syscall.RawConn, pid int32) bool {
	if pid <= 0 {
		return false
	}
	pidfd := -1
	if err := raw.Control(func(fd uintptr) {
		v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, soPeerPidfd)
		if err == nil {
			pidfd = v
		}
	}); err != nil || pidfd < 0 {
		return false
	}
	defer syscall.Close(pidfd)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	root := false
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			// real, effective, saved, filesystem
			f := strings.Fields(rest)
			root = len(f) >= 3 && (f[0] == "0" || f[2] == "0")
			break
		}
	}
	if !root {
		return false
	}
	// pidfd_send_signal(pidfd, 0): the process is still there.
	_, _, e := syscall.Syscall6(sysPidfdSendSignal, uintptr(pidfd), 0, 0, 0, 0, 0)
	return e == 0
}

// sysPidfdSendSignal is pidfd_send_signal(2)'s number (the same on every
// Linux architecture since 5.1).
const sysPidfdSendSignal = 424

// loopbackPeerUID finds the user owning the client end of a loopback TCP
// connection in the kernel's socket table (/proc/net/tcp and tcp6, as
// identd does): the socket whose local address is the connection's
// remote one and whose remote address is its local one.
func loopbackPeerUID(local, remote *net.TCPAddr) (uint32, bool) {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if uid, ok := scanSocketTable(f, remote, local); ok {
			return uid, true
		}
	}
	return 0, false
}

// scanSocketTable looks for the socket from local to remote in a
// /proc/net/tcp-style table and returns its uid.
func scanSocketTable(path string, local, remote *net.TCPAddr) (uint32, bool) {
	v6 := strings.HasSuffix(path, "6")
	l, r := procAddr(local, v6), procAddr(remote, v6)
	if l == "" || r == "" {
		return 0, false
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header line
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || !strings.EqualFold(fs[1], l) || !strings.EqualFold(fs[2], r) {
			continue
		}
		uid, err := strconv.ParseUint(fs[7], 10, 32)
		if err != nil {
			return 0, false
		}
		return uint32(uid), true
	}
	return 0, false
}

// procAddr formats a address as the kernel's socket tables do: the
// address's 32-bit words in host (little-endian) order in hex, a colon,
// the port in hex. An IPv4 address in tcp6 is v4-mapped.
func procAddr(a *net.TCPAddr, v6 bool) string {
	var ip net.IP
	if v6 {
		ip = a.IP.To16()
	} else {
		ip = a.IP.To4()
	}
	if ip == nil {
		return ""
	}
	var sb strings.Builder
	for i := 0; i < len(ip); i += 4 {
		// The kernel prints each 32-bit word as %08X of its value read
		// in host order (little-endian here): the bytes reversed.
		sb.WriteString(strings.ToUpper(hex.EncodeToString([]byte{ip[i+3], ip[i+2], ip[i+1], ip[i]})))
	}
	return fmt.Sprintf("%s:%04X", sb.String(), a.Port)
}
