package etcdswift

import (
	"container/list"
	"sync"
)

// chunkCache keeps recently written or read chunk objects in memory, by
// object name. Chunk objects are never changed after they are written (a
// change writes a new version under a new name), so a cached chunk is
// never stale, on this gateway or any other: a hit saves the Swift GET of
// a read, and of the read-modify-write of a partial write (small appends).
type chunkCache struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	lru   *list.List // of *cached, most recent first
	index map[string]*list.Element
}

type cached struct {
	name string
	data []byte
}

func newChunkCache(max int64) *chunkCache {
	return &chunkCache{max: max, lru: list.New(), index: map[string]*list.Element{}}
}

// get returns the cached contents of name; the caller must not modify them.
func (c *chunkCache) get(name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.index[name]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cached).data, true
}

// put caches data (which the caller must no longer modify) under name.
func (c *chunkCache) put(name string, data []byte) {
	if int64(len(data)) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[name]; ok {
		return
	}
	c.index[name] = c.lru.PushFront(&cached{name: name, data: data})
	c.bytes += int64(len(data))
	for c.bytes > c.max {
		e := c.lru.Back()
		v := e.Value.(*cached)
		c.lru.Remove(e)
		delete(c.index, v.name)
		c.bytes -= int64(len(v.data))
	}
}

// drop forgets name (a deleted version).
func (c *chunkCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[name]; ok {
		c.lru.Remove(e)
		delete(c.index, name)
		c.bytes -= int64(len(e.Value.(*cached).data))
	}
}
