package etcdswift

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// objectStore is where a volume's chunk objects live: a Swift container
// (swiftStore) or an S3 bucket (s3Store). Objects are written once under a
// new name and never changed; etcd says which ones a file is made of.
//
// Errors are the store's own, except that a missing object is reported
// wrapping errObjectNotFound.
type objectStore interface {
	// String names the container or bucket and where it is, for messages.
	String() string
	// connect checks that the store answers and takes the credentials
	// (Swift authenticates).
	connect(ctx context.Context) error
	// prepare creates the container or bucket if it is absent and says
	// whether it holds any object (format only formats an empty one).
	prepare(ctx context.Context) (empty bool, err error)
	// get appends the whole object to buf.
	get(ctx context.Context, name string, buf *bytes.Buffer) error
	// getRange reads the object's bytes [lo, lo+len(p)) into p and
	// returns how many it has there (0 if it ends before lo).
	getRange(ctx context.Context, name string, p []byte, lo int64) (int, error)
	// put stores data as the object name.
	put(ctx context.Context, name string, data []byte) error
	// remove deletes the object; a missing one is no error.
	remove(ctx context.Context, name string) error
	// list calls fn with every object's name and last modification time
	// until fn returns false.
	list(ctx context.Context, fn func(name string, modified time.Time) bool) error
	// usage returns the bytes stored and the store's quota (0: none).
	usage(ctx context.Context) (used, quota int64, err error)
	// transient says whether an error of this store may go away by
	// itself (a server restarting, overloaded or unreachable).
	transient(err error) bool
}

// errObjectNotFound is wrapped by the object store's error for a missing
// object.
var errObjectNotFound = errors.New("object not found")

// tlsConfig returns a TLS client configuration checking servers against
// the CAs in the PEM file caFile (empty: the system's) and presenting the
// certificate certFile with key keyFile (both or neither). what names the
// service for errors.
func tlsConfig(what, caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("etcdswift: %s CA file: %w", what, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcdswift: %s CA file %s holds no PEM certificate: %w", what, caFile, syscall.EINVAL)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("etcdswift: %s client certificate and key go together: %w", what, syscall.EINVAL)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("etcdswift: %s client certificate: %w", what, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// newTransport is the HTTP transport of an object store's client; tlsc is
// its TLS configuration (nil: Go's default, the system's CAs).
func newTransport(tlsc *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsc,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 2 * parallel,
		IdleConnTimeout:     90 * time.Second,
	}
}

// certificateError says whether err is a TLS certificate problem: the
// server's certificate not trusted or not for this host, or the server
// refusing ours. Those never go away by retrying.
func certificateError(err error) bool {
	var (
		ve *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return true
	}
	// The server's alert, as crypto/tls reports it ("remote error: tls:
	// bad certificate", "... certificate required").
	return err != nil && strings.Contains(err.Error(), "remote error: tls:")
}

// certHint is a hint for an error at connection: the configuration key of
// the CA file, if err is a certificate problem.
func certHint(err error, key string) string {
	if certificateError(err) {
		return " (check the object store's CA file: " + key + ")"
	}
	return ""
}

// ObjectStoreWait bounds how long one object store request waits for the
// store to answer again when it is unreachable or failing (connection
// refused or reset, a 5xx answer): a restart of Swift's proxy or an object
// server, or of an S3 server, makes calls wait rather than fail.
var ObjectStoreWait = time.Minute

// retry runs fn, again after a pause while its error is transient (see
// ObjectStoreWait) and ctx lasts.
func (b *Backend) retry(ctx context.Context, fn func() error) error {
	start := time.Now()
	pause := 50 * time.Millisecond
	logged := false
	for {
		err := fn()
		if err == nil || !b.store.transient(err) || time.Since(start)+pause > ObjectStoreWait {
			if err == nil && logged {
				b.log.Info("etcdswift: the object store answers again", zap.Duration("after", time.Since(start)))
			}
			return err
		}
		if !logged {
			b.log.Warn("etcdswift: the object store is unreachable or failing: waiting", zap.String("store", b.store.String()), zap.Error(err), zap.Duration("up_to", ObjectStoreWait))
			logged = true
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// transientNet says whether err is a network error that may go away by
// itself (refused, reset, timeouts), and not a certificate problem.
func transientNet(err error) bool {
	if certificateError(err) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}

// getObject reads a whole chunk object, through the cache.
func (b *Backend) getObject(ctx context.Context, name string) ([]byte, error) {
	if d, ok := b.cache.get(name); ok {
		return append(make([]byte, 0, b.chunk), d...), nil
	}
	var buf bytes.Buffer
	buf.Grow(int(b.chunk))
	err := b.retry(ctx, func() error {
		buf.Reset()
		return b.store.get(ctx, name, &buf)
	})
	if err != nil {
		return nil, err
	}
	b.cache.put(name, bytes.Clone(buf.Bytes()))
	return buf.Bytes(), nil
}

// putObject stores a new chunk version; data must not change afterwards.
func (b *Backend) putObject(ctx context.Context, name string, data []byte) error {
	if err := b.retry(ctx, func() error { return b.store.put(ctx, name, data) }); err != nil {
		return err
	}
	b.cache.put(name, data)
	return nil
}

// getRange reads object bytes [lo, lo+len(p)) into p and returns how many
// the object had there (the rest of p is left alone).
func (b *Backend) getRange(ctx context.Context, name string, p []byte, lo int64) (int, error) {
	if d, ok := b.cache.get(name); ok {
		if lo >= int64(len(d)) {
			return 0, nil
		}
		return copy(p, d[lo:]), nil
	}
	var n int
	err := b.retry(ctx, func() error {
		var err error
		n, err = b.store.getRange(ctx, name, p, lo)
		return err
	})
	return n, err
}
