package sshdial

import (
	"net"
	"syscall"
)

// QuickAck returns c wrapped so that TCP_QUICKACK is armed again after every
// read, which keeps Linux from delaying ACKs on the connection. Use it on the
// TCP connection to an SSH server when building your own *ssh.Client (see
// DialSSH for why). On other systems, or for a c that is not a
// *net.TCPConn, it returns c.
func QuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, raw: raw}
	q.arm()
	return q
}

// quickAckConn is a *net.TCPConn whose reads re-arm TCP_QUICKACK: the
// kernel clears it on its own after a while.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.arm()
	}
	return n, err
}

func (c *quickAckConn) arm() {
	c.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
