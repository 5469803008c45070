//go:build !linux

package server

import "net"

// peerUID is not available here: every Unix socket peer is the same peer.
func peerUID(uc *net.UnixConn) (uint32, bool) { return 0, false }

// peerCred is not available here: Unix socket peers must authenticate.
func peerCred(uc *net.UnixConn) (peerCredentials, bool) { return peerCredentials{}, false }

// loopbackPeerUID is not available here: TCP peers must authenticate.
func loopbackPeerUID(local, remote *net.TCPAddr) (uint32, bool) { return 0, false }
