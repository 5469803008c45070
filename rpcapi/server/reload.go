package server

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/conf"
)

// tokenTable maps the SHA-256 of each token to its principal.
type tokenTable map[[32]byte]*principal

// tlsReloader holds the TCP listener's TLS configuration; Reload replaces
// it. The listener asks it for the configuration of each handshake, so a
// renewed certificate or client CA applies to the next connection.
type tlsReloader struct {
	cfg conf.Server
	cur atomic.Pointer[tls.Config]
}

func newTLSReloader(cfg conf.Server) (*tlsReloader, error) {
	tc, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	r := &tlsReloader{cfg: cfg}
	r.cur.Store(tc)
	return r, nil
}

// listenerConfig is the configuration tls.NewListener gets: each
// handshake uses the current one.
func (r *tlsReloader) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.cur.Load(), nil },
	}
}

// reload reads the certificate, key and client CA files again; on an
// error the current configuration stays.
func (r *tlsReloader) reload() error {
	tc, err := serverTLS(r.cfg)
	if err != nil {
		return err
	}
	r.cur.Store(tc)
	return nil
}

// samePrincipal reports whether a reloaded token says the same as before.
func samePrincipal(a, b *principal) bool {
	return a.token == b.token && a.gateway == b.gateway && a.known == b.known &&
		a.uid == b.uid && a.gid == b.gid && slices.Equal(a.groups, b.groups)
}

// Reload reads access.tokens_file and the TCP listener's TLS files
// (server.tls_cert, tls_key, tls_client_ca) again, as proxyfsd does on
// SIGHUP. A file that fails to load leaves what it configured as it was
// and its error is returned (the other still reloads). Connections that
// authenticated with a token that is gone, or that now says something
// else, are closed: their clients reconnect and must authenticate again.
// Everything else in the configuration needs a restart.
func (s *Server) Reload() error {
	var errs []error
	if s.access.tokensFile != "" {
		if err := s.reloadTokens(); err != nil {
			s.log.Error("reload: access.tokens_file kept as it was", zap.Error(err))
			errs = append(errs, err)
		}
	}
	if r := s.tlsReloader(); r != nil {
		if err := r.reload(); err != nil {
			s.log.Error("reload: TLS certificate kept as it was", zap.Error(err))
			errs = append(errs, err)
		} else {
			s.log.Info("reloaded the TLS certificate", zap.String("tls_cert", s.cfg.TLSCert),
				zap.String("tls_client_ca", s.cfg.TLSClientCA))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) reloadTokens() error {
	next, err := loadTokens(s.access.tokensFile)
	if err != nil {
		return err
	}
	old := s.access.tokenTable()
	kept := map[*principal]bool{}
	for h, np := range next {
		if op, ok := old[h]; ok && samePrincipal(op, np) {
			next[h] = op // connections holding it stay
			kept[op] = true
		}
	}
	s.access.tokens.Store(&next)
	revoked := map[*principal]bool{}
	for _, op := range old {
		if !kept[op] {
			revoked[op] = true
		}
	}
	type revokedConn struct {
		nc net.Conn
		p  *principal
	}
	var gone []revokedConn
	s.mu.Lock()
	for nc, a := range s.auths {
		if p := a.get(); revoked[p] {
			gone = append(gone, revokedConn{nc, p})
		}
	}
	s.mu.Unlock()
	// Closed outside s.mu: closing a TLS connection writes an alert,
	// which a peer that does not read could hold up.
	for _, g := range gone {
		s.log.Info("closing connection: its token was removed or changed", zap.String("peer", g.p.desc),
			zap.String("remote", remote(g.nc)))
		g.nc.Close()
	}
	closed := len(gone)
	s.log.Info("reloaded access.tokens_file", zap.String("path", s.access.tokensFile),
		zap.Int("tokens", len(next)), zap.Int("revoked", len(revoked)), zap.Int("connections_closed", closed))
	return nil
}

// tlsReloader returns the TCP listener's TLS configuration holder; nil
// without TLS.
func (s *Server) tlsReloader() *tlsReloader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsr
}
