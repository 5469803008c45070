package etcdswift

import (
	"bytes"
	"context"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// PutOrphanForTest stores a chunk object that no chunk key names, as a
// crash between the Swift write and the etcd transaction leaves one.
func (b *Backend) PutOrphanForTest(ctx context.Context, ino vfsbackend.Ino, c int64) error {
	name, err := b.objectName(ino, c)
	if err != nil {
		return err
	}
	return b.store.put(ctx, name, []byte("orphan"))
}

func (b *Backend) RawEtcdPutForBench(ctx context.Context, k, v string) error {
	_, err := b.etcd.Txn(ctx).Then(clientv3.OpPut(b.counters+"bench/"+k, v)).Commit()
	return err
}

// RawSwiftPutForBench and RawSwiftGetForBench are one PUT and one GET of
// the object store's client (Swift's or S3's), without the engine.
func (b *Backend) RawSwiftPutForBench(ctx context.Context, name string, data []byte) error {
	return b.store.put(ctx, name, data)
}

func (b *Backend) RawSwiftGetForBench(ctx context.Context, name string) error {
	var buf bytes.Buffer
	return b.store.get(ctx, name, &buf)
}

func (b *Backend) DropCacheForBench() { b.cache = newChunkCache(cacheBytes) }

// CountEtcdForTest makes b count its etcd KV requests (reads, writes and
// transactions; not leases nor watches) in the counter it returns.
func CountEtcdForTest(b *Backend) *atomic.Int64 {
	n := new(atomic.Int64)
	b.etcd.KV = countingKV{KV: b.etcd.KV, n: n}
	return n
}

type countingKV struct {
	clientv3.KV
	n *atomic.Int64
}

func (c countingKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	c.n.Add(1)
	return c.KV.Get(ctx, key, opts...)
}

func (c countingKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	c.n.Add(1)
	return c.KV.Put(ctx, key, val, opts...)
}

func (c countingKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	c.n.Add(1)
	return c.KV.Delete(ctx, key, opts...)
}

func (c countingKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	c.n.Add(1)
	return c.KV.Do(ctx, op)
}

func (c countingKV) Txn(ctx context.Context) clientv3.Txn {
	return countingTxn{Txn: c.KV.Txn(ctx), n: c.n}
}

type countingTxn struct {
	clientv3.Txn
	n *atomic.Int64
}

func (t countingTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	return countingTxn{Txn: t.Txn.If(cs...), n: t.n}
}

func (t countingTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	return countingTxn{Txn: t.Txn.Then(ops...), n: t.n}
}

func (t countingTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	return countingTxn{Txn: t.Txn.Else(ops...), n: t.n}
}

func (t countingTxn) Commit() (*clientv3.TxnResponse, error) {
	t.n.Add(1)
	return t.Txn.Commit()
}
