package sshdial_test

import (
	"syscall"
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
)

// OpenSSH's sshd as a fault peer: a stall is SIGSTOP of the listener and of
// every per-connection process (as if the network stopped delivering), a
// drop is SIGKILL of the per-connection processes (the kernel then closes
// their sockets, as when sshd dies).
func init() {
	faultPeers = append(faultPeers, struct {
		name  string
		start func(t *testing.T) *faultServer
	}{"openssh", func(t *testing.T) *faultServer {
		srv := opensshd.Start(t)
		// Stopped processes cannot be killed by the cleanup's SIGKILL
		// until they are continued: resume first (cleanups run last
		// registered first, and opensshd.Start registered its own before).
		t.Cleanup(func() { srv.Signal(syscall.SIGCONT, true) })
		return &faultServer{
			addr:   srv.Addr,
			config: srv.ClientConfig(),
			stall:  func() { srv.Signal(syscall.SIGSTOP, true) },
			resume: func() { srv.Signal(syscall.SIGCONT, true) },
			drop:   func() { srv.Signal(syscall.SIGKILL, false) },
		}
	}})
}
