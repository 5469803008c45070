package main

import (
	"io"
	"syscall"
	"unsafe"
)

// isTerminal reports whether w is a file descriptor open on a terminal
// (the TCGETS ioctl succeeds).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
