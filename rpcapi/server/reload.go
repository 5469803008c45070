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

// samePrincipal reports whether a reloaded token or certificate user says
// the same as before.
func samePrincipal(a, b *principal) bool {
	return a.token == b.token && a.cert == b.cert && a.gateway == b.gateway && a.known == b.known &&
		a.uid == b.uid && a.gid == b.gid && slices.Equal(a.groups, b.groups)
}

// Reload reads access.tokens_file and the TCP listener's TLS files
// (server.tls_cert, tls_key, tls_client_ca) again, as proxyfsd does on
// SIGHUP, and, if next is not nil (the configuration file read again),
// takes its access.cert_users. A file that fails to load leaves what it
// configured as it was and its error is returned (the others still
// reload). Connections that authenticated with a token, or a client
// certificate, that is gone or now says something else are closed:
// their clients reconnect and must authenticate again. Everything else
// in the configuration needs a restart.
func (s *Server) Reload(next *conf.Config) error {
	var errs []error
	if next != nil {
		if err := s.reloadCertUsers(next.Access.CertUsers); err != nil {
			s.log.Error("reload: access.cert_users kept as they were", zap.Error(err))
			errs = append(errs, err)
		}
		if next.Access.TokensFile != s.access.tokensFile {
			s.log.Warn("reload: a new access.tokens_file path needs a restart; the old file is read again",
				zap.String("path", s.access.tokensFile), zap.String("new_path", next.Access.TokensFile))
		}
	}
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
	closed := s.closeConns(func(p *principal) bool { return revoked[p] }, "its token was removed or changed")
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

// reloadCertUsers replaces access.cert_users and closes the connections
// of a certificate user that is gone or now says something else.
func (s *Server) reloadCertUsers(users map[string]string) error {
	next, err := loadCertUsers(users)
	if err != nil {
		return err
	}
	old := s.access.certTable()
	s.access.certs.Store(&next)
	changed := 0
	for cn, op := range old {
		if np, ok := next[cn]; !ok || !samePrincipal(op, np) {
			changed++
		}
	}
	// A connection holds a copy of its certificate user's principal:
	// compare by common name.
	closed := s.closeConns(func(p *principal) bool {
		if p.cert == "" || p.token != "" {
			return false
		}
		np, ok := next[p.cert]
		return !ok || !samePrincipal(p, np)
	}, "its client certificate's access.cert_users entry was removed or changed")
	s.log.Info("reloaded access.cert_users", zap.Int("users", len(next)), zap.Int("removed_or_changed", changed),
		zap.Int("connections_closed", closed))
	return nil
}

// closeConns closes the connections whose principal gone reports, and
// returns how many.
func (s *Server) closeConns(gone func(*principal) bool, why string) int {
	type conn struct {
		nc net.Conn
		p  *principal
	}
	var cs []conn
	s.mu.Lock()
	for nc, a := range s.auths {
		if p := a.get(); p != nil && gone(p) {
			cs = append(cs, conn{nc, p})
		}
	}
	s.mu.Unlock()
	// Closed outside s.mu: closing a TLS connection writes an alert,
	// which a peer that does not read could hold up.
	for _, c := range cs {
		s.log.Info("closing connection: "+why, zap.String("peer", c.p.desc), zap.String("remote", remote(c.nc)))
		c.nc.Close()
	}
	return len(cs)
}
