package etcdswift

import (
	"bytes"
	"context"

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
