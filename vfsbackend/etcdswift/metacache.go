package etcdswift

import (
	"context"
	"sync"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// metaCacheKeys bounds the metadata cache (entries; a value is a record
// or an entry, some hundred bytes).
const metaCacheKeys = 1 << 16

// metaCache keeps metadata values this gateway read or committed, each
// with its mod revision, for the reads of calls that carry a read set
// (the calls that change metadata: package inode's optimistic attempts).
// Such a read may be stale: it is noted in the read set at the cached
// revision, so the call's commit (or the validation of a call that does
// not commit) compares it and fails with ErrConflict if the key changed
// since, and the failure drops the set's keys from the cache, so that the
// next attempt reads them from etcd. A stale entry therefore costs a
// retry, never a wrong answer; a current one saves a round trip to etcd
// (a create in a directory this gateway created in before reads nothing:
// the directory's record is cached from the last commit, and the name is
// assumed absent). Reads without a read set, or with one that reads
// through (the attempts after a lost race, whatever lost it: a metadata
// commit or a data change), never use it. Only present keys are cached.
type metaCache struct {
	mu sync.Mutex
	m  map[string]cachedKV
}

type cachedKV struct {
	value string
	rev   int64
}

func newMetaCache() *metaCache { return &metaCache{m: make(map[string]cachedKV)} }

func (c *metaCache) get(k string) (cachedKV, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// put caches value as k's at rev, unless a later revision of k is cached.
func (c *metaCache) put(k, value string, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok && old.rev > rev {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= metaCacheKeys {
		for d := range c.m { // evict an arbitrary eighth
			delete(c.m, d)
			if len(c.m) < metaCacheKeys-metaCacheKeys/8 {
				break
			}
		}
	}
	c.m[k] = cachedKV{value: value, rev: rev}
}

func (c *metaCache) drop(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// dropRead forgets every key rs read: one of them changed (a conflict).
func (c *metaCache) dropRead(rs *vfsbackend.ReadSet) {
	var keys []string
	rs.Each(func(k string, _ int64) { keys = append(keys, k) }, func(vfsbackend.ReadRange) {})
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
}

// AssumeAbsent notes key as absent in ctx's read set without reading it
// (vfsbackend.SharedEngine): the commit compares its mod revision with 0.
func (b *Backend) AssumeAbsent(ctx context.Context, key []byte) bool {
	rs := vfsbackend.ReadSetFrom(ctx)
	if rs == nil || rs.Through() || b.check() != nil {
		return false
	}
	rs.Key(b.meta+string(key), 0)
	return true
}
