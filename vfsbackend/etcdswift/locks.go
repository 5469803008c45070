package etcdswift

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/proxyfs/proxyfs/lock"
)

// Byte-range and flock locks shared between gateways (lock.Store).
//
// Each gateway publishes its locks on a file as one key,
// P "k" ino(8) lease(8), holding {"p": POSIX locks, "f": flock locks}
// (JSON), attached to the gateway's etcd lease (pins.go): when a gateway
// dies its locks go with its lease, LeaseTTL later. package lock's Shared
// decides what to publish and when.

var _ lock.Store = (*Backend)(nil)

type lockValue struct {
	Posix []lock.Lock `json:"p,omitempty"`
	Flock []lock.Lock `json:"f,omitempty"`
}

func (b *Backend) lockPrefix(ino uint64) string { return b.lockKeys + be64(ino) }

// Others returns the locks the other gateways hold on k.
func (b *Backend) Others(ctx context.Context, k lock.Key) (posix, flocks []lock.Lock, token int64, err error) {
	if err := b.check(); err != nil {
		return nil, nil, 0, err
	}
	p := &b.pins
	p.mu.Lock()
	own := p.id
	p.mu.Unlock()
	pfx := b.lockPrefix(k.Inode)
	resp, err := b.etcd.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, 0, etcdErr("locks", err)
	}
	for _, kv := range resp.Kvs {
		if own != 0 && string(kv.Key) == pfx+be64(uint64(own)) {
			continue
		}
		var v lockValue
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, nil, 0, fmt.Errorf("etcdswift: locks of %d: %w", k.Inode, err)
		}
		posix = append(posix, v.Posix...)
		flocks = append(flocks, v.Flock...)
	}
	return posix, flocks, resp.Header.Revision, nil
}

// Publish replaces this gateway's locks on k, if no other gateway's
// changed since token (0: unconditionally).
func (b *Backend) Publish(ctx context.Context, k lock.Key, posix, flocks []lock.Lock, token int64) error {
	if err := b.checkWrite(); err != nil {
		return err
	}
	p := &b.pins
	p.mu.Lock()
	id, err := b.lease(ctx)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	pfx := b.lockPrefix(k.Inode)
	key := pfx + be64(uint64(id))
	op := clientv3.OpDelete(key)
	if len(posix)+len(flocks) > 0 {
		v, err := json.Marshal(lockValue{Posix: posix, Flock: flocks})
		if err != nil {
			return err
		}
		op = clientv3.OpPut(key, string(v), clientv3.WithLease(id))
	}
	txn := b.etcd.Txn(ctx)
	if token != 0 {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(pfx), "<", token+1).WithPrefix())
	}
	resp, err := txn.Then(op).Commit()
	if err != nil {
		return etcdErr("publish locks", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdswift: publish locks of %d: %w", k.Inode, lock.ErrStoreConflict)
	}
	return nil
}

// Changed returns a channel closed when a gateway's locks on k change
// after token, or ctx ends.
func (b *Backend) Changed(ctx context.Context, k lock.Key, token int64) <-chan struct{} {
	ch := make(chan struct{})
	wch := b.etcd.Watch(clientv3.WithRequireLeader(ctx), b.lockPrefix(k.Inode), clientv3.WithPrefix(), clientv3.WithRev(token+1))
	go func() {
		defer close(ch)
		for resp := range wch {
			if len(resp.Events) > 0 || resp.Err() != nil {
				return
			}
		}
	}()
	return ch
}
