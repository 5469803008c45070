package etcdswift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ncw/swift/v2"
)

// swiftStore keeps chunk objects in a Swift container, through Swift's
// native API (github.com/ncw/swift).
type swiftStore struct {
	conn      *swift.Connection
	container string
}

func newSwiftStore(authURL, user, key, container string, t *http.Transport) *swiftStore {
	return &swiftStore{
		conn: &swift.Connection{
			UserName:  user,
			ApiKey:    key,
			AuthUrl:   authURL,
			Transport: t,
			UserAgent: "proxyfs-etcdswift",
			Timeout:   60 * time.Second,
		},
		container: container,
	}
}

func (s *swiftStore) String() string {
	return fmt.Sprintf("Swift container %q at %s", s.container, s.conn.AuthUrl)
}

func (s *swiftStore) connect(ctx context.Context) error {
	if err := s.conn.Authenticate(ctx); err != nil {
		return fmt.Errorf("Swift authentication at %s: %w%s", s.conn.AuthUrl, err, certHint(err, "swift_tls_ca"))
	}
	return nil
}

func (s *swiftStore) prepare(ctx context.Context) (bool, error) {
	info, _, err := s.conn.Container(ctx, s.container)
	switch {
	case errors.Is(err, swift.ContainerNotFound):
		if err := s.conn.ContainerCreate(ctx, s.container, nil); err != nil {
			return false, fmt.Errorf("create container %q: %w", s.container, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("container %q: %w", s.container, err)
	}
	return info.Count == 0, nil
}

// notFound wraps Swift's 404 for an object in errObjectNotFound.
func notFound(err error) error {
	if errors.Is(err, swift.ObjectNotFound) {
		return fmt.Errorf("%w: %w", errObjectNotFound, err)
	}
	return err
}

func (s *swiftStore) get(ctx context.Context, name string, buf *bytes.Buffer) error {
	_, err := s.conn.ObjectGet(ctx, s.container, name, buf, false, nil)
	return notFound(err)
}

func (s *swiftStore) getRange(ctx context.Context, name string, p []byte, lo int64) (int, error) {
	h := swift.Headers{"Range": fmt.Sprintf("bytes=%d-%d", lo, lo+int64(len(p))-1)}
	f, _, err := s.conn.ObjectOpen(ctx, s.container, name, false, h)
	if err != nil {
		var se *swift.Error
		if errors.As(err, &se) && se.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return 0, nil // the object ends before lo
		}
		return 0, notFound(err)
	}
	n, err := io.ReadFull(f, p)
	cerr := f.Close()
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	if err == nil {
		err = cerr
	}
	return n, err
}

func (s *swiftStore) put(ctx context.Context, name string, data []byte) error {
	_, err := s.conn.ObjectPut(ctx, s.container, name, bytes.NewReader(data), false, "", "application/octet-stream",
		swift.Headers{"Content-Length": strconv.Itoa(len(data))})
	return err
}

func (s *swiftStore) remove(ctx context.Context, name string) error {
	err := s.conn.ObjectDelete(ctx, s.container, name)
	if errors.Is(err, swift.ObjectNotFound) {
		return nil
	}
	return err
}

func (s *swiftStore) list(ctx context.Context, fn func(name string, modified time.Time) bool) error {
	stop := errors.New("stop")
	err := s.conn.ObjectsWalk(ctx, s.container, &swift.ObjectsOpts{Limit: 1000}, func(ctx context.Context, opts *swift.ObjectsOpts) (any, error) {
		objs, err := s.conn.Objects(ctx, s.container, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if !fn(o.Name, o.LastModified) {
				return nil, stop
			}
		}
		return objs, nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}

// usage is the container's statistics (which Swift updates
// asynchronously: they may lag behind recent writes) and its quota.
func (s *swiftStore) usage(ctx context.Context) (int64, int64, error) {
	info, _, err := s.conn.Container(ctx, s.container)
	if err != nil {
		return 0, 0, err
	}
	return info.Bytes, info.QuotaBytes, nil
}

// transient: the network, or a server error (5xx, 408).
func (s *swiftStore) transient(err error) bool {
	var se *swift.Error
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusRequestTimeout
	}
	return transientNet(err)
}
