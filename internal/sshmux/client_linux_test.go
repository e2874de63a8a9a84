package sshmux

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// The SSH connection under the master lost (sshd's session process
// killed): the master exits, and the forward reads as lost.
func TestSSHConnectionUnderMasterLost(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	conn := open(t, m.client(t), tg)
	for _, pid := range srv.Sessions() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := conn.Read(make([]byte, 10))
	if !errors.Is(err, ErrMasterLost) {
		t.Fatalf("Read after the SSH connection was lost: %v, want ErrMasterLost", err)
	}
}
