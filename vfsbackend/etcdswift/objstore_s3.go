package etcdswift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Store keeps chunk objects in an S3 bucket (Amazon S3, Swift's s3api,
// Ceph RGW, MinIO), through github.com/minio/minio-go: AWS signature v4,
// path-style requests except where the endpoint is known to take
// virtual-host ones (Amazon's).
type s3Store struct {
	cli      *minio.Client
	endpoint string
	bucket   string
	region   string

	// S3 keeps no bucket statistics: usage lists the bucket, at most
	// once per usageTTL.
	usageMu   sync.Mutex
	usedBytes int64
	usedAt    time.Time
}

const usageTTL = time.Minute

func newS3Store(endpoint, region, accessKey, secretKey, bucket string, t *http.Transport) (*s3Store, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("etcdswift: S3 endpoint %q is not an http:// or https:// URL of a host: %w", endpoint, syscall.EINVAL)
	}
	if bucket == "" {
		return nil, fmt.Errorf("etcdswift: no S3 bucket: %w", syscall.EINVAL)
	}
	cli, err := minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:    u.Scheme == "https",
		Transport: t,
		Region:    region,
		// Retries are the engine's (Backend.retry), bounded by
		// ObjectStoreWait and logged.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("etcdswift: S3 endpoint %s: %w", endpoint, err)
	}
	cli.SetAppInfo("proxyfs-etcdswift", "")
	return &s3Store{cli: cli, endpoint: endpoint, bucket: bucket, region: region}, nil
}

func (s *s3Store) String() string { return fmt.Sprintf("S3 bucket %q at %s", s.bucket, s.endpoint) }

// connect checks the credentials: the bucket's HEAD (absent is fine
// here; prepare creates it).
func (s *s3Store) connect(ctx context.Context) error {
	if _, err := s.cli.BucketExists(ctx, s.bucket); err != nil {
		return fmt.Errorf("S3 at %s: %w%s", s.endpoint, err, certHint(err, "s3_tls_ca"))
	}
	return nil
}

func (s *s3Store) prepare(ctx context.Context) (bool, error) {
	ok, err := s.cli.BucketExists(ctx, s.bucket)
	if err != nil {
		return false, fmt.Errorf("bucket %q: %w", s.bucket, err)
	}
	if !ok {
		if err := s.cli.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region}); err != nil {
			return false, fmt.Errorf("create bucket %q: %w", s.bucket, err)
		}
		return true, nil
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.cli.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Recursive: true, MaxKeys: 1}) {
		if o.Err != nil {
			return false, fmt.Errorf("bucket %q: %w", s.bucket, o.Err)
		}
		return false, nil
	}
	return true, nil
}

// s3Err wraps S3's NoSuchKey in errObjectNotFound.
func s3Err(err error) error {
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return fmt.Errorf("%w: %w", errObjectNotFound, err)
	}
	return err
}

func (s *s3Store) get(ctx context.Context, name string, buf *bytes.Buffer) error {
	o, err := s.cli.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return s3Err(err)
	}
	_, err = buf.ReadFrom(o)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	return s3Err(err)
}

func (s *s3Store) getRange(ctx context.Context, name string, p []byte, lo int64) (int, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(lo, lo+int64(len(p))-1); err != nil {
		return 0, err
	}
	o, err := s.cli.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		return 0, s3Err(err)
	}
	n, err := io.ReadFull(o, p)
	cerr := o.Close()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	if err != nil && minio.ToErrorResponse(err).StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return 0, nil // the object ends before lo
	}
	if err == nil {
		err = cerr
	}
	return n, s3Err(err)
}

func (s *s3Store) put(ctx context.Context, name string, data []byte) error {
	_, err := s.cli.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		DisableMultipart: true, // a chunk is at most 64 MiB: one PUT
		// A plain PUT signed without its payload's hash, which would make
		// minio-go stream it in aws-chunked signed pieces over http (not
		// every S3 server takes those: Swift's s3api does not), but with
		// Content-MD5, which the server checks: a chunk damaged on the way
		// is refused, with TLS or without.
		DisableContentSha256: true,
		SendContentMd5:       true,
	})
	return err
}

func (s *s3Store) remove(ctx context.Context, name string) error {
	return s3Err(s.cli.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}))
}

func (s *s3Store) list(ctx context.Context, fn func(name string, modified time.Time) bool) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing's goroutine if fn stops early
	for o := range s.cli.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		if !fn(o.Key, o.LastModified) {
			return nil
		}
	}
	return nil
}

// usage sums the sizes of the bucket's objects (a listing, at most once a
// minute: S3 keeps no bucket statistics). There is no quota to report.
func (s *s3Store) usage(ctx context.Context) (int64, int64, error) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	if !s.usedAt.IsZero() && time.Since(s.usedAt) < usageTTL {
		return s.usedBytes, 0, nil
	}
	var total int64
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.cli.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return 0, 0, o.Err
		}
		total += o.Size
	}
	s.usedBytes, s.usedAt = total, time.Now()
	return total, 0, nil
}

// transient: the network, or a server error (5xx but 501 and 505, 408,
// SlowDown).
func (s *s3Store) transient(err error) bool {
	if r := minio.ToErrorResponse(err); r.StatusCode != 0 {
		return (r.StatusCode >= 500 && r.StatusCode != http.StatusNotImplemented && r.StatusCode != http.StatusHTTPVersionNotSupported) ||
			r.StatusCode == http.StatusRequestTimeout || r.Code == "SlowDown"
	}
	return transientNet(err)
}
