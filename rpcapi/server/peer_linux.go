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
	c, ok := peerCred(uc)
	return c.uid, ok
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
	return c, true
}

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
