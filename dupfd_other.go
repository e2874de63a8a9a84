//go:build !unix

package sshdial

import (
	"errors"
	"syscall"
)

// dupSocket fails: only Unix systems pass descriptors (and there is no
// master to hand a connection to elsewhere).
func dupSocket(rc syscall.RawConn) (int, error) {
	return -1, errors.New("sshdial: passing a connection needs Unix domain sockets")
}

func closeFD(fd int) {}
