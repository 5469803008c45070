package wire

import (
	"strconv"
	"syscall"
)

// errnoNames maps the errnos proxyfs reports to their symbolic names.
var errnoNames = map[syscall.Errno]string{
	syscall.EPERM:        "EPERM",
	syscall.ENOENT:       "ENOENT",
	syscall.EINTR:        "EINTR",
	syscall.EIO:          "EIO",
	syscall.EBADF:        "EBADF",
	syscall.EAGAIN:       "EAGAIN",
	syscall.ENOMEM:       "ENOMEM",
	syscall.EACCES:       "EACCES",
	syscall.EBUSY:        "EBUSY",
	syscall.EEXIST:       "EEXIST",
	syscall.EXDEV:        "EXDEV",
	syscall.ENODEV:       "ENODEV",
	syscall.ENOTDIR:      "ENOTDIR",
	syscall.EISDIR:       "EISDIR",
	syscall.EINVAL:       "EINVAL",
	syscall.EMFILE:       "EMFILE",
	syscall.EFBIG:        "EFBIG",
	syscall.ENOSPC:       "ENOSPC",
	syscall.EROFS:        "EROFS",
	syscall.EMLINK:       "EMLINK",
	syscall.ERANGE:       "ERANGE",
	syscall.ENAMETOOLONG: "ENAMETOOLONG",
	syscall.ENOSYS:       "ENOSYS",
	syscall.ENOTEMPTY:    "ENOTEMPTY",
	syscall.ELOOP:        "ELOOP",
	syscall.ENODATA:      "ENODATA",
	syscall.EOVERFLOW:    "EOVERFLOW",
	syscall.ENOTSUP:      "ENOTSUP",
	syscall.ETIMEDOUT:    "ETIMEDOUT",
	syscall.E2BIG:        "E2BIG",
	syscall.ENXIO:        "ENXIO",
	syscall.EDEADLK:      "EDEADLK",
	syscall.ENOLCK:       "ENOLCK",
}

// ErrnoName returns the symbolic name of e ("ENOENT"), or "E<number>" for
// an errno proxyfs does not name.
func ErrnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "E" + strconv.Itoa(int(e))
}
