package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// principal is who a connection is: the local user the kernel reports
// for its peer (Unix socket, loopback TCP), or the token it sent (auth).
// It decides which identities the connection's calls may run as.
type principal struct {
	// desc names the principal in logs and error messages.
	desc string
	// token is the token's name ("" for a kernel-identified peer).
	token string
	// cert is the common name of the client certificate that identified
	// the connection (access.cert_users), or "".
	cert string
	// known: uid, gid and groups are the principal's own identity; an
	// ordinary principal may act as that uid with its gid or one of its
	// groups as primary group and a subset of them as groups.
	known  bool
	uid    uint32
	gid    uint32
	groups []uint32
	// gateway may act as any identity.
	gateway bool
	// refused, if set, is why the connection may do nothing but ping
	// and auth: a peer not allowed to connect, or one that must
	// authenticate first (TLS, a peer the kernel could not name).
	refused string
}

// connAuth is a connection's principal; auth replaces it.
type connAuth struct {
	p atomic.Pointer[principal]
}

func (a *connAuth) get() *principal { return a.p.Load() }

type authKey struct{}

// withAuth returns ctx carrying a connection's principal.
func withAuth(ctx context.Context, a *connAuth) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// authOf returns the principal ctx carries; nil if none (a bug: every
// connection has one).
func authOf(ctx context.Context) *connAuth {
	a, _ := ctx.Value(authKey{}).(*connAuth)
	return a
}

// idSet is a set of numeric user or group ids.
type idSet map[uint32]bool

func (s idSet) any(ids ...uint32) bool {
	for _, id := range ids {
		if s[id] {
			return true
		}
	}
	return false
}

// accessPolicy is [access] resolved to ids.
type accessPolicy struct {
	allUsers          bool
	users, groups     idSet
	gwUsers, gwGroups idSet
	// tokens is the tokens file's table (nil: no tokens file); Reload
	// replaces it.
	tokens     atomic.Pointer[tokenTable]
	tokensFile string
	// certs maps a client certificate's common name to its principal
	// (access.cert_users); Reload replaces it.
	certs atomic.Pointer[certTable]
}

// certTable maps a client certificate's common name to its principal.
type certTable map[string]*principal

// certTable returns the current cert_users; nil if there are none.
func (ap *accessPolicy) certTable() certTable {
	if t := ap.certs.Load(); t != nil {
		return *t
	}
	return nil
}

// loadCertUsers resolves access.cert_users.
func loadCertUsers(users map[string]string) (certTable, error) {
	t := certTable{}
	for cn, acts := range users {
		p := &principal{desc: "cert " + cn, cert: cn}
		if acts == "*" {
			p.gateway = true
		} else {
			id, err := parseIdentity(acts)
			if err != nil {
				return nil, fmt.Errorf("config: access.cert_users %q: %w", cn, err)
			}
			p.known, p.uid, p.gid, p.groups = true, id.UID, id.GID, id.Groups
		}
		t[cn] = p
	}
	return t, nil
}

// tokenTable returns the current tokens; nil without a tokens file.
func (ap *accessPolicy) tokenTable() tokenTable {
	if t := ap.tokens.Load(); t != nil {
		return *t
	}
	return nil
}

// volumeAccess is a volume's users and groups resolved; nil: open to
// every principal that may connect.
type volumeAccess struct {
	rw, ro principalList // users/groups, users_ro/groups_ro
}

// principalList is a volume's users and groups (or users_ro and
// groups_ro) resolved.
type principalList struct {
	users, groups idSet
	tokens, certs map[string]bool
}

func (l *principalList) has(p *principal) bool {
	if p.token != "" && l.tokens[p.token] {
		return true
	}
	if p.cert != "" && l.certs[p.cert] {
		return true
	}
	return p.known && (l.users[p.uid] || l.groups.any(p.gid) || l.groups.any(p.groups...))
}

// access levels of a principal on a volume
const (
	accessNone = iota
	accessRO
	accessRW
)

// level says what p may do on the volume: read-write (users, groups, or
// no lists at all), read-only (users_ro, groups_ro) or nothing.
func (va *volumeAccess) level(p *principal) int {
	switch {
	case va == nil || va.rw.has(p):
		return accessRW
	case va.ro.has(p):
		return accessRO
	}
	return accessNone
}

// newAccessPolicy resolves the [access] section: user and group names
// through the user database, the tokens file.
func newAccessPolicy(a conf.Access) (*accessPolicy, error) {
	ap := &accessPolicy{users: idSet{}, groups: idSet{}, gwUsers: idSet{}, gwGroups: idSet{}}
	for _, l := range []struct {
		key   string
		names []string
		dst   idSet
		group bool
	}{{"access.users", a.Users, ap.users, false}, {"access.groups", a.Groups, ap.groups, true},
		{"access.gateway_users", a.GatewayUsers, ap.gwUsers, false}, {"access.gateway_groups", a.GatewayGroups, ap.gwGroups, true}} {
		for _, n := range l.names {
			if n == "*" {
				ap.allUsers = true
				continue
			}
			id, err := resolveID(n, l.group)
			if err != nil {
				return nil, fmt.Errorf("config: %s: %w", l.key, err)
			}
			l.dst[id] = true
		}
	}
	if a.TokensFile != "" {
		t, err := loadTokens(a.TokensFile)
		if err != nil {
			return nil, err
		}
		ap.tokens.Store(&t)
		ap.tokensFile = a.TokensFile
	}
	certs, err := loadCertUsers(a.CertUsers)
	if err != nil {
		return nil, err
	}
	ap.certs.Store(&certs)
	return ap, nil
}

// newVolumeAccess resolves a volume's users, groups, users_ro and
// groups_ro; nil if it has none.
func newVolumeAccess(vc conf.Volume) (*volumeAccess, error) {
	if len(vc.Users) == 0 && len(vc.Groups) == 0 && len(vc.UsersRO) == 0 && len(vc.GroupsRO) == 0 {
		return nil, nil
	}
	va := &volumeAccess{}
	for _, l := range []struct {
		dst           *principalList
		users, groups []string
		ukey, gkey    string
	}{{&va.rw, vc.Users, vc.Groups, "users", "groups"}, {&va.ro, vc.UsersRO, vc.GroupsRO, "users_ro", "groups_ro"}} {
		*l.dst = principalList{users: idSet{}, groups: idSet{}, tokens: map[string]bool{}, certs: map[string]bool{}}
		for _, n := range l.users {
			if t, ok := strings.CutPrefix(n, "token:"); ok {
				l.dst.tokens[t] = true
				continue
			}
			if cn, ok := strings.CutPrefix(n, "cert:"); ok {
				l.dst.certs[cn] = true
				continue
			}
			id, err := resolveID(n, false)
			if err != nil {
				return nil, fmt.Errorf("config: volume %q: %s: %w", vc.Name, l.ukey, err)
			}
			l.dst.users[id] = true
		}
		for _, n := range l.groups {
			id, err := resolveID(n, true)
			if err != nil {
				return nil, fmt.Errorf("config: volume %q: %s: %w", vc.Name, l.gkey, err)
			}
			l.dst.groups[id] = true
		}
	}
	return va, nil
}

// resolveID turns a user (or group) name or numeric id into an id.
func resolveID(n string, group bool) (uint32, error) {
	if id, err := strconv.ParseUint(n, 10, 32); err == nil {
		return uint32(id), nil
	}
	var s string
	if group {
		g, err := user.LookupGroup(n)
		if err != nil {
			return 0, fmt.Errorf("unknown group %q", n)
		}
		s = g.Gid
	} else {
		u, err := user.Lookup(n)
		if err != nil {
			return 0, fmt.Errorf("unknown user %q", n)
		}
		s = u.Uid
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q has id %q", n, s)
	}
	return uint32(id), nil
}

// minTokenLen is the shortest token accepted in the tokens file.
const minTokenLen = 16

// loadTokens reads a tokens file: one "TOKEN NAME ACTS_AS" per line,
// ACTS_AS "*" (a gateway: any identity) or "UID:GID[:G1,G2,...]"; blank
// lines and lines starting with # are skipped.
func loadTokens(path string) (tokenTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: access.tokens_file: %w", err)
	}
	defer f.Close()
	out := tokenTable{}
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("config: access.tokens_file %s: line %d: %s", path, n, why) }
		fs := strings.Fields(line)
		if len(fs) != 3 {
			return nil, bad("want TOKEN NAME ACTS_AS")
		}
		if len(fs[0]) < minTokenLen {
			return nil, bad(fmt.Sprintf("token shorter than %d characters", minTokenLen))
		}
		if names[fs[1]] {
			return nil, bad(fmt.Sprintf("name %q used twice", fs[1]))
		}
		names[fs[1]] = true
		p := &principal{desc: "token " + fs[1], token: fs[1]}
		if fs[2] == "*" {
			p.gateway = true
		} else {
			id, err := parseIdentity(fs[2])
			if err != nil {
				return nil, bad(err.Error())
			}
			p.known, p.uid, p.gid, p.groups = true, id.UID, id.GID, id.Groups
		}
		h := sha256.Sum256([]byte(fs[0]))
		if _, dup := out[h]; dup {
			return nil, bad("token used twice")
		}
		out[h] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: access.tokens_file: %w", err)
	}
	return out, nil
}

// parseIdentity parses "UID:GID[:G1,G2,...]".
func parseIdentity(s string) (wire.Identity, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return wire.Identity{}, fmt.Errorf("acts as %q: want * or UID:GID[:G1,G2,...]", s)
	}
	num := func(v string) (uint32, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("acts as %q: %q is not a numeric id", s, v)
		}
		return uint32(n), nil
	}
	var id wire.Identity
	var err error
	if id.UID, err = num(parts[0]); err != nil {
		return id, err
	}
	if id.GID, err = num(parts[1]); err != nil {
		return id, err
	}
	if len(parts) == 3 && parts[2] != "" {
		for _, g := range strings.Split(parts[2], ",") {
			n, err := num(g)
			if err != nil {
				return id, err
			}
			id.Groups = append(id.Groups, n)
		}
		if len(id.Groups) > wire.MaxMountGroups {
			return id, fmt.Errorf("acts as %q: more than %d groups", s, wire.MaxMountGroups)
		}
	}
	return id, nil
}

// connPrincipal says who a new connection is. Unix socket: the peer's
// credentials (SO_PEERCRED and SO_PEERGROUPS). Plain loopback TCP: the
// user owning the peer's socket in the kernel's socket table, with the
// groups the user database gives it. TLS: nobody until auth.
func (s *Server) connPrincipal(nc net.Conn) *principal {
	switch c := nc.(type) {
	case *tls.Conn:
		// serveConn has read the first bytes: the handshake is done, and
		// a client certificate, if any, verified against tls_client_ca.
		if certs := c.ConnectionState().PeerCertificates; len(certs) > 0 {
			cn := certs[0].Subject.CommonName
			if p := s.access.certTable()[cn]; p != nil {
				cp := *p
				cp.desc = fmt.Sprintf("cert %s (tls %s)", cn, remote(nc))
				return &cp
			}
			return &principal{desc: fmt.Sprintf("cert %q (tls %s)", cn, remote(nc)),
				refused: fmt.Sprintf("client certificate CN %q is not in access.cert_users: authenticate with a token (auth)", cn)}
		}
		return &principal{desc: "tls " + remote(nc), refused: "a TLS connection must authenticate with a token first (auth)"}
	case *net.UnixConn:
		cred, ok := peerCred(c)
		if !ok {
			return &principal{desc: "unix peer", refused: "the peer's credentials are unknown: authenticate with a token (auth)"}
		}
		return s.localPrincipal(cred, "unix")
	case *net.TCPConn:
		la, _ := c.LocalAddr().(*net.TCPAddr)
		ra, _ := c.RemoteAddr().(*net.TCPAddr)
		if la != nil && ra != nil && ra.IP.IsLoopback() {
			if uid, ok := loopbackPeerUID(la, ra); ok {
				cred := peerCredentials{uid: uid, gid: uid}
				if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
					if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
						cred.gid = uint32(g)
					}
					if gs, err := u.GroupIds(); err == nil {
						for _, g := range gs {
							if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) != cred.gid {
								cred.groups = append(cred.groups, uint32(n))
							}
						}
					}
				} else if uid != 0 {
					return &principal{desc: fmt.Sprintf("uid %d (tcp %s)", uid, ra),
						refused: fmt.Sprintf("uid %d has no entry in the user database: authenticate with a token (auth) or use the Unix socket", uid)}
				}
				return s.localPrincipal(cred, "tcp "+ra.String())
			}
		}
		return &principal{desc: "tcp " + remote(nc), refused: "the peer's user is unknown: authenticate with a token (auth)"}
	}
	return &principal{desc: remote(nc), refused: "unknown kind of connection: authenticate with a token (auth)"}
}

// peerCredentials are a local peer's ids as the kernel reports them.
type peerCredentials struct {
	uid, gid uint32
	groups   []uint32
}

// localPrincipal applies [access] to a local peer.
func (s *Server) localPrincipal(c peerCredentials, via string) *principal {
	ap := s.access
	p := &principal{desc: fmt.Sprintf("uid %d (%s)", c.uid, via), known: true, uid: c.uid, gid: c.gid, groups: c.groups}
	if len(p.groups) > wire.MaxMountGroups {
		p.groups = p.groups[:wire.MaxMountGroups]
	}
	p.gateway = ap.gwUsers[c.uid] || ap.gwGroups.any(c.gid) || ap.gwGroups.any(c.groups...)
	if !p.gateway && !ap.allUsers && !ap.users[c.uid] && !ap.groups.any(c.gid) && !ap.groups.any(c.groups...) {
		p.refused = fmt.Sprintf("uid %d may not connect (access.users, access.groups)", c.uid)
	}
	return p
}

// errNotAllowed is the error of a call from a refused connection.
func (p *principal) errRefused() error {
	return fmt.Errorf("%s: %s: %w", p.desc, p.refused, syscall.EACCES)
}

// mayActAs returns nil if p may run calls as id: a gateway as anyone,
// anyone else only as its own uid, with its gid or one of its groups as
// primary group and groups among those (EPERM otherwise).
func (p *principal) mayActAs(id mount.Identity) error {
	if p.refused != "" {
		return p.errRefused()
	}
	if p.gateway {
		return nil
	}
	if !p.known || id.UID != p.uid {
		return fmt.Errorf("%s may act only as itself, not as uid %d: %w", p.desc, id.UID, syscall.EPERM)
	}
	mine := func(g uint32) bool { return g == p.gid || slices.Contains(p.groups, g) }
	if !mine(id.GID) {
		return fmt.Errorf("%s is not in group %d: %w", p.desc, id.GID, syscall.EPERM)
	}
	for _, g := range id.Groups {
		if !mine(g) {
			return fmt.Errorf("%s is not in group %d: %w", p.desc, g, syscall.EPERM)
		}
	}
	return nil
}

// authorize checks that p may use volume v as id; it logs a refusal.
// readOnly: p may only read the volume (users_ro, groups_ro).
func (s *Server) authorize(p *principal, v *volume, id mount.Identity, what string) (readOnly bool, err error) {
	err = p.mayActAs(id)
	if err == nil {
		switch v.access.level(p) {
		case accessNone:
			err = fmt.Errorf("%s may not use volume %q (its users and groups): %w", p.desc, v.name, syscall.EACCES)
		case accessRO:
			readOnly = true
		}
	}
	if err != nil {
		s.log.Info("refused", zap.String("peer", p.desc), zap.String("call", what), zap.String("volume", v.name),
			zap.Uint32("uid", id.UID), zap.Uint32("gid", id.GID), zap.Uint32s("groups", id.Groups), zap.Error(err))
	}
	return readOnly, err
}

// authenticate runs auth: the token's principal becomes the
// connection's (EACCES for a token the server does not know).
func (s *Server) authenticate(a *connAuth, token string) (*principal, error) {
	old := a.get()
	var found *principal
	if tokens := s.access.tokenTable(); tokens != nil {
		h := sha256.Sum256([]byte(token))
		for k, p := range tokens {
			if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
				found = p
			}
		}
	}
	if found == nil {
		s.log.Info("refused", zap.String("peer", old.desc), zap.String("call", wire.MethodAuth), zap.String("reason", "unknown token"))
		return nil, fmt.Errorf("auth from %s: unknown token: %w", old.desc, syscall.EACCES)
	}
	a.p.Store(found)
	s.log.Info("authenticated", zap.String("peer", old.desc), zap.String("as", found.desc))
	return found, nil
}

func authResult(p *principal) wire.AuthResult {
	r := wire.AuthResult{Name: p.token, Gateway: p.gateway}
	if p.known {
		uid, gid := p.uid, p.gid
		r.UID, r.GID, r.Groups = &uid, &gid, p.groups
	}
	return r
}

// mountIdentity is the identity from a per-call identity.
func mountIdentity(as *wire.Identity) mount.Identity {
	return mount.Identity{UID: as.UID, GID: as.GID, Groups: as.Groups}
}

var errNoAuth = errors.New("connection without a principal")
