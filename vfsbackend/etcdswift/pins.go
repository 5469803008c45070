package etcdswift

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Open inodes shared between gateways (vfsbackend.Pinner).
//
// A gateway that has an inode open keeps a key P "p" ino(8) lease(8) in
// etcd, attached to the gateway's etcd lease (one per engine, granted at
// the first pin, kept alive while the process runs, revoked at Close).
// When a gateway dies its lease expires after LeaseTTL and etcd deletes
// its pins with it. A gateway whose lease expired while it was alive (cut
// off from etcd for longer than LeaseTTL) grants a new one and pins its
// open inodes again.

// LeaseTTL is the time to live of a gateway's etcd lease: how long after
// a gateway dies its pins go.
var LeaseTTL = 10 * time.Second

type pinState struct {
	mu     sync.Mutex
	id     clientv3.LeaseID // 0: none yet, or lost
	pinned map[vfsbackend.Ino]clientv3.LeaseID
	stop   context.CancelFunc // ends the keep-alive
	closed bool
	wg     sync.WaitGroup // the keep-alive goroutines
	// stripes order Pin and Unpin of one inode.
	stripes [64]sync.Mutex
}

func (b *Backend) pinKey(ino vfsbackend.Ino, id clientv3.LeaseID) string {
	return b.pinKeys + be64(uint64(ino)) + be64(uint64(id))
}

// lease returns the gateway's lease, granting it (and starting its
// keep-alive) if there is none. Called with b.pins.mu held.
func (b *Backend) lease(ctx context.Context) (clientv3.LeaseID, error) {
	p := &b.pins
	if p.closed {
		return 0, fmt.Errorf("etcdswift: backend is closed: %w", syscall.EIO)
	}
	if p.id != 0 {
		return p.id, nil
	}
	if p.stop != nil {
		p.stop() // the old keep-alive, of a lost lease
	}
	g, err := b.etcd.Grant(ctx, int64(LeaseTTL/time.Second))
	if err != nil {
		return 0, etcdErr("lease", err)
	}
	kctx, stop := context.WithCancel(context.Background())
	ch, err := b.etcd.KeepAlive(kctx, g.ID)
	if err != nil {
		stop()
		return 0, etcdErr("lease keep-alive", err)
	}
	p.id, p.stop = g.ID, stop
	p.wg.Add(1)
	go b.keepAlive(g.ID, ch)
	// Pins under a lost lease are gone: take them again.
	for ino, old := range p.pinned {
		if old == g.ID {
			continue
		}
		if _, err := b.etcd.Put(ctx, b.pinKey(ino, g.ID), "1", clientv3.WithLease(g.ID)); err != nil {
			return 0, etcdErr("pin again", err)
		}
		p.pinned[ino] = g.ID
	}
	return g.ID, nil
}

// keepAlive drains the lease's keep-alive answers; when they end while
// the engine is open, the lease is lost and the next pin grants another.
func (b *Backend) keepAlive(id clientv3.LeaseID, ch <-chan *clientv3.LeaseKeepAliveResponse) {
	defer b.pins.wg.Done()
	for range ch {
	}
	p := &b.pins
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.id != id {
		return
	}
	p.id = 0
	b.log.Warn("etcdswift: the gateway's etcd lease was lost: its open files are pinned again at the next open", zap.Int64("lease", int64(id)))
	// Pin again now rather than at the next open, so that the open files
	// are not left unpinned; failing that, the next Pin does it.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), LeaseTTL)
		defer cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed || p.id != 0 || len(p.pinned) == 0 {
			return
		}
		if _, err := b.lease(ctx); err != nil {
			b.log.Warn("etcdswift: pin open files under a new lease", zap.Error(err))
		}
	}()
}

// closePins ends the keep-alive and revokes the lease, so that the
// gateway's pins go at once.
func (b *Backend) closePins() {
	p := &b.pins
	p.mu.Lock()
	p.closed = true
	id, stop := p.id, p.stop
	p.id = 0
	p.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	p.wg.Wait()
	if id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := b.etcd.Revoke(ctx, id); err != nil {
			b.log.Warn("etcdswift: revoke the gateway's lease (its pins go when it expires)", zap.Error(err))
		}
	}
}

// Pin notes that this gateway has ino open (vfsbackend.Pinner).
func (b *Backend) Pin(ctx context.Context, ino vfsbackend.Ino) error {
	if err := b.checkWrite(); err != nil {
		return err
	}
	s := &b.pins.stripes[uint64(ino)%uint64(len(b.pins.stripes))]
	s.Lock()
	defer s.Unlock()
	p := &b.pins
	p.mu.Lock()
	id, err := b.lease(ctx)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	k := b.pinKey(ino, id)
	txn := b.etcd.Txn(ctx)
	rs := vfsbackend.ReadSetFrom(ctx)
	if rs != nil && !rs.Committed() {
		txn = txn.If(readCompares(rs)...)
	}
	resp, err := txn.Then(clientv3.OpPut(k, "1", clientv3.WithLease(id))).Commit()
	if err != nil {
		return etcdErr("pin", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdswift: pin %d: %w", ino, vfsbackend.ErrConflict)
	}
	if rs != nil {
		rs.CommittedAt(resp.Header.Revision, map[string]bool{k: false})
	}
	p.mu.Lock()
	if p.pinned == nil {
		p.pinned = map[vfsbackend.Ino]clientv3.LeaseID{}
	}
	p.pinned[ino] = id
	p.mu.Unlock()
	return nil
}

// Unpin notes that this gateway no longer has ino open
// (vfsbackend.Pinner).
func (b *Backend) Unpin(ctx context.Context, ino vfsbackend.Ino) error {
	if err := b.check(); err != nil {
		return err
	}
	s := &b.pins.stripes[uint64(ino)%uint64(len(b.pins.stripes))]
	s.Lock()
	defer s.Unlock()
	p := &b.pins
	p.mu.Lock()
	id, ok := p.pinned[ino]
	delete(p.pinned, ino)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	if _, err := b.etcd.Delete(ctx, b.pinKey(ino, id)); err != nil {
		return etcdErr("unpin", err)
	}
	return nil
}

// Pinned reports whether any gateway has ino open (vfsbackend.Pinner).
func (b *Backend) Pinned(ctx context.Context, ino vfsbackend.Ino) (bool, error) {
	if err := b.check(); err != nil {
		return false, err
	}
	from := b.pinKeys + be64(uint64(ino))
	found := false
	err := b.scanTracked(ctx, from, clientv3.GetPrefixRangeEnd(from), func(k, _ []byte) bool {
		found = len(k) == len(from)+8 && binary.BigEndian.Uint64(k[len(from):]) != 0
		return !found
	})
	return found, err
}
