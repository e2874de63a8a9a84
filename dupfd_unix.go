//go:build unix

package sshdial

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// dupSocket returns a close-on-exec duplicate of rc's descriptor.
func dupSocket(rc syscall.RawConn) (int, error) {
	dup, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return dup, derr
}

func closeFD(fd int) { unix.Close(fd) }
