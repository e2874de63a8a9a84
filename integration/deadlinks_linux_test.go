package integration

import (
	"syscall"
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
)

// openSSHDeadLinks is the OpenSSH kind of dead link: sshd and the
// processes serving its connections stopped with SIGSTOP (Linux: the
// sessions are found through /proc).
func openSSHDeadLinks(t *testing.T) []deadLink {
	sshd := startNamedSSHD(t)
	return []deadLink{{"openssh", sshd.Dial(t), func() func() {
		sshd.Signal(syscall.SIGSTOP, true)
		return func() { sshd.Signal(syscall.SIGCONT, true) }
	}, sshd}}
}

// resumeOnCleanup sends SIGCONT to srv's processes when the test ends.
func resumeOnCleanup(t testing.TB, srv *opensshd.Server) {
	t.Cleanup(func() { srv.Signal(syscall.SIGCONT, true) })
}
