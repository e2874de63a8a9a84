package sshdial

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memoryFile holds data in an anonymous memory file (memfd) and returns a
// path that opens it, each open reading it from the start, and a function
// that frees it; the path is valid until then. It fails where memfd or
// /proc is not available.
func memoryFile(data []byte) (path string, release func(), err error) {
	fd, err := unix.MemfdCreate("sshdial-known-hosts", unix.MFD_CLOEXEC)
	if err != nil {
		return "", nil, err
	}
	f := os.NewFile(uintptr(fd), "memfd")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", nil, err
	}
	path = fmt.Sprintf("/proc/self/fd/%d", fd)
	probe, err := os.Open(path) // /proc may not be mounted
	if err != nil {
		f.Close()
		return "", nil, err
	}
	probe.Close()
	return path, func() { f.Close() }, nil
}
