package client

import (
	"context"
	"iter"
	"sync"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// maxParallelChunks bounds how many chunks of one Read or Write are in
// flight at once.
const maxParallelChunks = 8

// Read reads up to len(p) bytes of file ino at offset off into p, over the
// binary channel, and returns how many it read. Fewer than len(p) means
// the file ends there; reading at or past the end returns 0 and no error
// (not io.EOF). Buffers larger than MaxIOSize are read as several requests
// in parallel. A missing inode is EBADF.
func (m *Mount) Read(ctx context.Context, ino uint64, p []byte, off uint64) (int, error) {
	n, err := m.chunked(ctx, wire.OpRead, nil, ino, p, off)
	return n, toEBADF(err)
}

// Write writes p to file ino at offset off over the binary channel and
// returns how many bytes were written. Buffers larger than MaxIOSize are
// written as several requests in parallel; on an error the count is that
// of the leading chunks that were written. A missing inode is EBADF.
func (m *Mount) Write(ctx context.Context, ino uint64, p []byte, off uint64) (int, error) {
	n, err := m.chunked(ctx, wire.OpWrite, nil, ino, p, off)
	return n, toEBADF(err)
}

// chunked reads or writes p in chunks of at most MaxIOSize, through
// handle h (nil: none).
func (m *Mount) chunked(ctx context.Context, op uint16, h *Handle, ino uint64, p []byte, off uint64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	ctx, cancel := m.c.withTimeout(ctx)
	defer cancel()
	chunk := int(m.MaxIOSize())
	if len(p) <= chunk {
		return m.ioChunk(ctx, op, h, ino, p, off)
	}
	nchunks := (len(p) + chunk - 1) / chunk
	ns := make([]int, nchunks)
	errs := make([]error, nchunks)
	sem := make(chan struct{}, maxParallelChunks)
	var wg sync.WaitGroup
	for i := range nchunks {
		lo := i * chunk
		hi := min(lo+chunk, len(p))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ns[i], errs[i] = m.ioChunk(ctx, op, h, ino, p[lo:hi], off+uint64(lo))
		}()
	}
	wg.Wait()
	total := 0
	for i := range nchunks {
		if errs[i] != nil {
			return total, errs[i]
		}
		total += ns[i]
		if want := min(chunk, len(p)-i*chunk); ns[i] < want {
			break // end of file (read) or short write
		}
	}
	return total, nil
}

// ioChunk reads or writes one chunk of at most MaxIOSize bytes, with
// retries, through handle h (nil: none). Reads and writes are idempotent,
// so they are simply retried.
func (m *Mount) ioChunk(ctx context.Context, op uint16, h *Handle, ino uint64, p []byte, off uint64) (int, error) {
	name := wire.MethodRead
	var payload, dst []byte
	if op == wire.OpWrite {
		name, payload = wire.MethodWrite, p
	} else {
		dst = p
	}
	var n int
	_, err := m.doCtx(ctx, name, func(ctx context.Context, st *mountState) error {
		var fh uint64
		if h != nil {
			var err error
			if fh, err = h.on(ctx, name, st); err != nil {
				return err
			}
		}
		rh, err := m.c.binAttempt(ctx, name, wire.RequestHeader{
			Opcode:  op,
			MountID: st.MountID,
			Inode:   ino,
			Offset:  off,
			Length:  uint32(len(p)),
			As:      m.as,
			Fh:      fh,
		}, payload, dst)
		n = int(rh.Length)
		return err
	})
	if err != nil {
		return 0, err
	}
	return min(n, len(p)), nil
}

// ReadDir returns one batch of the entries of directory ino that follow
// the entry whose cookie is prevCookie (-1 starts at the beginning, with
// "." and ".."), at most max entries (0: the server's default), and
// whether the directory ends after them. Pass the Cookie of the last
// entry returned as prevCookie to continue.
func (m *Mount) ReadDir(ctx context.Context, ino uint64, prevCookie int64, max int) ([]DirEntry, bool, error) {
	return m.readDir(ctx, wire.MethodReaddir, ino, prevCookie, max)
}

func (m *Mount) readDir(ctx context.Context, method string, ino uint64, prevCookie int64, max int) ([]DirEntry, bool, error) {
	var res wire.ReaddirResult
	err := m.call(ctx, method, func(id uint64) any {
		return wire.ReaddirParams{MountID: id, Inode: ino, PrevCookie: prevCookie, MaxEntries: uint32(max)}
	}, &res)
	if err != nil {
		return nil, false, err
	}
	return res.Entries, res.EOF, nil
}

// Entries returns an iterator over all entries of directory ino ("." and
// ".." included), fetched in batches with ReadDir. Entries that exist for
// the whole walk are returned exactly once even if the directory changes
// meanwhile. On an error the iterator yields it once and stops.
//
//	for e, err := range m.Entries(ctx, dir) {
//		if err != nil { ... }
//		fmt.Println(e.Name)
//	}
func (m *Mount) Entries(ctx context.Context, ino uint64) iter.Seq2[DirEntry, error] {
	return m.entries(ctx, wire.MethodReaddir, ino)
}

// EntriesPlus is Entries with each entry's Stat filled in (ReadDirPlus).
func (m *Mount) EntriesPlus(ctx context.Context, ino uint64) iter.Seq2[DirEntry, error] {
	return m.entries(ctx, wire.MethodReaddirPlus, ino)
}

func (m *Mount) entries(ctx context.Context, method string, ino uint64) iter.Seq2[DirEntry, error] {
	return func(yield func(DirEntry, error) bool) {
		cookie := int64(-1)
		for {
			batch, eof, err := m.readDir(ctx, method, ino, cookie, 0)
			if err != nil {
				yield(DirEntry{}, err)
				return
			}
			for _, e := range batch {
				if !yield(e, nil) {
					return
				}
				cookie = e.Cookie
			}
			if eof || len(batch) == 0 {
				return
			}
		}
	}
}

// ReadDirAll returns all entries of directory ino ("." and ".."
// included).
func (m *Mount) ReadDirAll(ctx context.Context, ino uint64) ([]DirEntry, error) {
	var all []DirEntry
	for e, err := range m.Entries(ctx, ino) {
		if err != nil {
			return all, err
		}
		all = append(all, e)
	}
	return all, nil
}
