package inode

import (
	"errors"
	"syscall"
	"testing"
)

// may's execute rule, which no call of the package exercises on files:
// root executes a file only if it has an execute bit, and searches any
// directory; others need their class's bit.
func TestMayExecute(t *testing.T) {
	root, owner, other := Caller{}, Caller{UID: 1, GID: 1}, Caller{UID: 2, GID: 2}
	for _, c := range []struct {
		c    Caller
		mode uint32
		want error
	}{
		{root, ModeRegular | 0o644, syscall.EACCES},
		{root, ModeRegular | 0o001, nil},
		{root, ModeRegular | 0o010, nil},
		{root, ModeDir | 0o000, nil},
		{owner, ModeRegular | 0o100, nil},
		{owner, ModeRegular | 0o011, syscall.EACCES},
		{other, ModeRegular | 0o001, nil},
		{other, ModeDir | 0o776, syscall.EACCES},
		{other, ModeSymlink | 0o000, nil}, // a symlink's mode is never checked
	} {
		a := &Attr{Ino: 9, Mode: c.mode, UID: 1, GID: 1}
		err := c.c.may(a, MayExec)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("uid %d, mode %#o: %v, want %v", c.c.UID, c.mode, err, c.want)
		}
	}
	if err := root.may(&Attr{Mode: ModeRegular}, MayRead|MayWrite); err != nil {
		t.Errorf("root read+write of a 0000 file: %v", err)
	}
}
