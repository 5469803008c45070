package inode

import (
	"fmt"
	"syscall"

	"go.uber.org/zap"
)

func errNotDir(ino Ino) error { return fmt.Errorf("inode %d: %w", ino, syscall.ENOTDIR) }

func errIsDir(ino Ino) error { return fmt.Errorf("inode %d: %w", ino, syscall.EISDIR) }

func zapIno(ino Ino) zap.Field { return zap.Uint64("ino", uint64(ino)) }

func zapErr(err error) zap.Field { return zap.Error(err) }
