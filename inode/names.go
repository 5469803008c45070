package inode

import (
	"fmt"
	"strings"
	"syscall"
	"unicode/utf8"
)

// checkName validates one name for lookup-style use: 1..255 bytes of valid
// UTF-8 without '/' or NUL. "." and ".." pass; callers that create or
// remove entries reject them with checkNewName.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name: %w", syscall.EINVAL)
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes: %w", len(name), syscall.ENAMETOOLONG)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q contains '/' or NUL: %w", name, syscall.EINVAL)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8: %w", name, syscall.EINVAL)
	}
	return nil
}

// checkNewName validates a name that an entry is created under or removed
// from: checkName, and not "." or "..".
func checkNewName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return fmt.Errorf("name %q: %w", name, syscall.EINVAL)
	}
	return nil
}

// splitPath checks a path's length and encoding and returns its
// components, without empty and "." components. A trailing "." is kept as
// the last component when keepLastDot is set, so that "a/." is not taken
// for "a" by calls that act on the last component.
func splitPath(path string, keepLastDot bool) ([]string, error) {
	if len(path) > MaxPathLen {
		return nil, fmt.Errorf("path of %d bytes: %w", len(path), syscall.ENAMETOOLONG)
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, fmt.Errorf("path contains NUL: %w", syscall.EINVAL)
	}
	if !utf8.ValidString(path) {
		return nil, fmt.Errorf("path is not valid UTF-8: %w", syscall.EINVAL)
	}
	raw := strings.Split(path, "/")
	comps := make([]string, 0, len(raw))
	for i, c := range raw {
		if c == "" || (c == "." && !(keepLastDot && i == len(raw)-1)) {
			continue
		}
		if len(c) > MaxNameLen {
			return nil, fmt.Errorf("path component of %d bytes: %w", len(c), syscall.ENAMETOOLONG)
		}
		comps = append(comps, c)
	}
	return comps, nil
}

func checkTime(t Timespec) error {
	if t.Nsec < 0 || t.Nsec > 999_999_999 {
		return fmt.Errorf("nanoseconds %d out of range: %w", t.Nsec, syscall.EINVAL)
	}
	return nil
}
