package etcdswift

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Object stores (vfsbackend.RemoteOptions.ObjectStore).
const (
	StoreSwift = "swift"
	StoreS3    = "s3"
)

// newStore makes the client of the volume's object store.
func (b *Backend) newStore(r vfsbackend.RemoteOptions) error {
	switch r.ObjectStore {
	case "", StoreSwift:
		if r.SwiftAuthURL == "" || r.SwiftContainer == "" {
			return fmt.Errorf("etcdswift: Swift auth URL and container are needed: %w", syscall.EINVAL)
		}
		var tlsc *tls.Config
		if r.SwiftTLSCA != "" {
			c, err := tlsConfig("Swift", r.SwiftTLSCA, "", "")
			if err != nil {
				return err
			}
			tlsc = c
		}
		b.transport = newTransport(tlsc)
		b.store = newSwiftStore(r.SwiftAuthURL, r.SwiftUser, r.SwiftKey, r.SwiftContainer, b.transport)
		b.container = r.SwiftContainer
	case StoreS3:
		var tlsc *tls.Config
		if r.S3TLSCA != "" {
			c, err := tlsConfig("S3", r.S3TLSCA, "", "")
			if err != nil {
				return err
			}
			tlsc = c
		}
		b.transport = newTransport(tlsc)
		s, err := newS3Store(r.S3Endpoint, r.S3Region, r.S3AccessKey, r.S3SecretKey, r.S3Bucket, b.transport)
		if err != nil {
			return err
		}
		b.store = s
		b.container = r.S3Bucket
	default:
		return fmt.Errorf("etcdswift: unknown object store %q (have %q, %q): %w", r.ObjectStore, StoreSwift, StoreS3, syscall.EINVAL)
	}
	return nil
}

// newEtcd makes the etcd client: TLS when an endpoint is https or a TLS
// file is given, a user when one is given. Before it, a TLS etcd is
// probed, so that a certificate problem is an error naming it rather than
// a timeout (etcd's client retries it silently).
func (b *Backend) newEtcd(r vfsbackend.RemoteOptions, log *zap.Logger) error {
	secure := r.EtcdTLSCA != "" || r.EtcdTLSCert != "" || r.EtcdTLSKey != ""
	for _, e := range r.EtcdEndpoints {
		if strings.HasPrefix(e, "https://") {
			secure = true
		}
	}
	var tlsc *tls.Config
	if secure {
		c, err := tlsConfig("etcd", r.EtcdTLSCA, r.EtcdTLSCert, r.EtcdTLSKey)
		if err != nil {
			return err
		}
		tlsc = c
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = probeTLS(ctx, r.EtcdEndpoints, tlsc)
		cancel()
		if err != nil {
			return err
		}
	}
	if (r.EtcdUser == "") != (r.EtcdPassword == "") {
		return fmt.Errorf("etcdswift: etcd user and password go together: %w", syscall.EINVAL)
	}
	// etcd's client logs every retry at info; keep its warnings.
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          r.EtcdEndpoints,
		TLS:                tlsc,
		Username:           r.EtcdUser,
		Password:           r.EtcdPassword,
		DialTimeout:        10 * time.Second,
		MaxCallSendMsgSize: 64 << 20,
		MaxCallRecvMsgSize: 64 << 20,
		Logger:             log.Named("etcd").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel)),
	})
	if err != nil {
		return fmt.Errorf("etcdswift: etcd %v: %w", r.EtcdEndpoints, err)
	}
	b.etcd = cli
	b.etcdURLs = r.EtcdEndpoints
	return nil
}

// probeTLS makes a TLS connection to each endpoint until one succeeds:
// the handshake, then a read of etcd's first bytes (with TLS 1.3 a server
// refuses a client certificate only after the handshake). If none
// succeeds and one failed for its certificates, that is the error; any
// other failure (an endpoint down) is left to etcd's client, which
// retries.
func probeTLS(ctx context.Context, endpoints []string, c *tls.Config) error {
	var certErr error
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Host == "" {
			continue // etcd's client reports it
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "2379")
		}
		cc := c.Clone()
		if cc.ServerName == "" {
			cc.ServerName = u.Hostname()
		}
		cc.NextProtos = []string{"h2"}
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cc}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			var p [1]byte
			_, err = conn.Read(p[:])
			conn.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = nil // nothing to read yet, and no refusal
			}
		}
		if err == nil {
			return nil
		}
		if certificateError(err) && certErr == nil {
			certErr = fmt.Errorf("etcdswift: etcd %s: TLS: %w (check the etcd CA file, client certificate and key: etcd_tls_ca, etcd_tls_cert, etcd_tls_key)", e, err)
		}
	}
	return certErr
}

// etcdOpenErr is the error of Open's first etcd request.
func (b *Backend) etcdOpenErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("etcdswift: etcd %v did not answer: %w (is it up? for a TLS etcd, are the endpoints https:// and the TLS files right?)", b.etcdURLs, err)
	}
	return fmt.Errorf("etcdswift: etcd %v: %w", b.etcdURLs, err)
}
