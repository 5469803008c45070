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
	_, err = b.sw.ObjectPut(ctx, b.container, name, bytes.NewReader([]byte("orphan")), false, "", "", nil)
	return err
}

func (b *Backend) RawEtcdPutForBench(ctx context.Context, k, v string) error {
	_, err := b.etcd.Txn(ctx).Then(clientv3.OpPut(b.counters+"bench/"+k, v)).Commit()
	return err
}

func (b *Backend) RawSwiftPutForBench(ctx context.Context, name string, data []byte) error {
	err := b.sw.ObjectPutBytes(ctx, b.container, name, data, "application/octet-stream")
	return err
}

func (b *Backend) RawSwiftGetForBench(ctx context.Context, name string) error {
	_, err := b.sw.ObjectGetBytes(ctx, b.container, name)
	return err
}

func (b *Backend) DropCacheForBench() { b.cache = newChunkCache(cacheBytes) }
