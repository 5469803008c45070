package inode

import (
	"context"
)

// DefaultReadDirMax is the batch size ReadDir uses when asked for max <= 0.
const DefaultReadDirMax = 1024

// ReadDir returns up to max entries of directory dir that follow the entry
// whose cookie is prevCookie (prevCookie < 1 starts at the beginning), and
// whether the listing is complete. "." (cookie 1) and ".." (cookie 2) come
// first, then entries in the order they were added. Each entry's Cookie
// continues the listing after it; cookies stay valid while the directory
// changes, so an entry that exists for the whole listing is returned
// exactly once. With plus, each entry carries its attributes.
//
// c needs read permission on dir, and with plus search permission too
// (the attributes of an entry are what a lookup of it gives).
func (fs *FS) ReadDir(ctx context.Context, c Caller, dir Ino, prevCookie int64, max int, plus bool) ([]DirEntry, bool, error) {
	if max <= 0 {
		max = DefaultReadDirMax
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	d, err := fs.getDir(ctx, dir)
	if err != nil {
		return nil, false, err
	}
	want := MayRead
	if plus {
		want |= MayExec
	}
	if err := c.may(&d.Attr, want); err != nil {
		return nil, false, err
	}
	var out []DirEntry
	add := func(name string, ino Ino, typ uint8, cookie int64) error {
		e := DirEntry{Name: name, Ino: ino, Type: typ, Cookie: cookie}
		if plus {
			r, err := fs.get(ctx, ino)
			if err != nil {
				return err
			}
			e.Attr = r.Attr
		}
		out = append(out, e)
		return nil
	}
	if prevCookie < cookieDot {
		if err := add(".", dir, DTDir, cookieDot); err != nil {
			return nil, false, err
		}
	}
	if prevCookie < cookieDotDot && len(out) < max {
		if err := add("..", d.Parent, DTDir, cookieDotDot); err != nil {
			return nil, false, err
		}
	}
	if len(out) == max {
		return out, false, nil
	}
	start := cookieKey(dir, max64(prevCookie+1, firstCookie))
	eof := true
	var scanErr error
	err = fs.be.Scan(ctx, inoKey(pfxCookie, dir), start, func(k, v []byte) bool {
		if len(out) == max {
			eof = false
			return false
		}
		ino, typ, name, err := decodeCookieValue(v)
		if err != nil {
			scanErr = err
			return false
		}
		out = append(out, DirEntry{Name: name, Ino: ino, Type: typ, Cookie: int64(decodeCookieKey(k))})
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, false, err
	}
	if plus {
		// Attributes are loaded after the scan: a Backend's Scan callback
		// must not call into the Backend.
		for i := range out {
			if out[i].Cookie < firstCookie {
				continue
			}
			r, err := fs.get(ctx, out[i].Ino)
			if err != nil {
				return nil, false, err
			}
			out[i].Attr = r.Attr
		}
	}
	return out, eof, nil
}

func decodeCookieKey(k []byte) uint64 {
	var v uint64
	for _, c := range k[len(k)-8:] {
		v = v<<8 | uint64(c)
	}
	return v
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
