package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// WithTLS makes the Client speak TLS on TCP with cfg (its RootCAs, and
// Certificates for a server that wants client certificates). A cfg
// without ServerName gets the host of the address dialed. proxyfsd
// serves TLS when configured with server.tls_cert: on any TCP address
// that is not loopback, and where an administrator chose it.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithToken makes the Client authenticate every connection it opens with
// token (auth, PROTOCOL.md "Authentication") before any other request.
// The server's tokens file says which identities the token may act as.
// A TLS connection must authenticate; on the Unix socket and loopback
// TCP a token replaces the identity the kernel gives the peer.
func WithToken(token string) Option {
	return func(o *options) { o.token = token }
}

// secure wraps a new connection in TLS if the Client has WithTLS, and
// authenticates it if it has WithToken; binary says which protocol the
// connection will speak.
func (c *Client) secure(ctx context.Context, nc net.Conn, binary bool) (net.Conn, error) {
	if ep := c.ep(); c.o.tls != nil && ep.network == "tcp" {
		cfg := c.o.tls.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(ep.addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		nc = tc
	}
	if c.o.token == "" {
		return nc, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(c.writeTimeout()))
	}
	var err error
	if binary {
		err = authBinary(nc, c.o.token)
	} else {
		err = authJSON(nc, c.o.token)
	}
	_ = nc.SetDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// authBinary sends AUTH on a new binary channel and reads its reply.
func authBinary(nc net.Conn, token string) error {
	frame := wire.AppendRequest(nil, wire.RequestHeader{Opcode: wire.OpAuth, ID: 0, Length: uint32(len(token))})
	if _, err := nc.Write(append(frame, token...)); err != nil {
		return err
	}
	var hdr [wire.ReplyHeaderSize]byte
	rh, err := wire.ReadReply(nc, &hdr)
	if err != nil {
		return err
	}
	if rh.Length > 0 {
		if _, err := io.CopyN(io.Discard, nc, int64(rh.Length)); err != nil {
			return err
		}
	}
	if rh.Errno != 0 {
		return fromBinary(wire.MethodAuth, rh.Errno, rh.Flags)
	}
	return nil
}

// authJSON sends auth on a new JSON-RPC connection and reads its reply
// (the server sends nothing else before it: nothing is read ahead).
func authJSON(nc net.Conn, token string) error {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 0, "method": wire.MethodAuth,
		"params": wire.AuthParams{Token: token}})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(nc, "Content-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		return err
	}
	// Read byte by byte up to the body, so that nothing beyond the reply
	// is taken from the connection.
	br := bufio.NewReaderSize(oneByte{nc}, 16)
	length := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			if length, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || length < 0 || length > 1<<20 {
				return fmt.Errorf("auth: bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("auth: reply without Content-Length")
	}
	reply := make([]byte, length)
	if _, err := io.ReadFull(br, reply); err != nil {
		return err
	}
	var r struct {
		Error *struct {
			Message string `json:"message"`
			Data    struct {
				Errno int `json:"errno"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if r.Error != nil {
		errno := syscall.Errno(r.Error.Data.Errno)
		if errno == 0 {
			errno = syscall.EACCES
		}
		return &Error{Op: wire.MethodAuth, Errno: errno, Msg: r.Error.Message}
	}
	return nil
}

// oneByte reads at most one byte at a time.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
