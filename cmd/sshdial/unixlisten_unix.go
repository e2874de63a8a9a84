//go:build unix

package main

import (
	"context"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
)

// listenUnixPrivate listens on a unix socket at path that only this user
// can connect to (mode 0600), whatever the umask, as OpenSSH's
// StreamLocalBindMask 0177 makes it for `ssh -L /path:...`. Setting the
// mode after bind would leave a moment at which others may connect, so
// the socket is private from its bind on.
func listenUnixPrivate(path string) (net.Listener, error) {
	if runtime.GOOS == "linux" {
		return listenUnixFchmod(path)
	}
	return listenUnixUmask(path)
}

// listenUnixFchmod is listenUnixPrivate for Linux, which creates the
// socket file with the mode of the socket's inode less the umask: the mode
// set on the socket before bind (fchmod, in the ListenConfig's Control)
// holds from the start, with no change of the process-wide umask that
// would race with files other goroutines create. The chmod after bind only
// gives back owner bits that a umask such as 0277 took away.
func listenUnixFchmod(path string) (net.Listener, error) {
	l, err := privateUnix.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// privateUnix sets mode 0600 on a socket before it is bound.
var privateUnix = net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = syscall.Fchmod(int(fd), 0o600)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("fchmod", err)
	}
	return nil
}}

// umaskMu serializes the umask changes of listenUnixUmask.
var umaskMu sync.Mutex

// listenUnixUmask is listenUnixPrivate for the BSDs and macOS, which give
// the socket file 0777 less the umask and ignore a mode set before bind:
// as OpenSSH does, the umask is 0177 around the bind. The umask is
// process-wide; a file another goroutine creates at that moment gets fewer
// permissions, never more.
func listenUnixUmask(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
