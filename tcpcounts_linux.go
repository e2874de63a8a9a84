package sshdial

import (
	"net"

	"golang.org/x/sys/unix"
)

// Linux's TCP states (include/net/tcp_states.h).
const (
	tcpFinWait2  = 5
	tcpTimeWait  = 6
	tcpClose     = 7
	tcpCloseWait = 8
	tcpLastAck   = 9
	tcpClosing   = 11
)

// tcpCounts returns the bytes a TCP connection has received from its peer
// and the bytes written to it (those the peer acknowledged, from TCP_INFO,
// and those still in the send queue, SIOCOUTQ), from the kernel, or -1
// and -1 when c is no TCP connection.
func tcpCounts(c net.Conn) (received, acked int64) {
	received, acked = -1, -1
	tcpControl(c, func(fd int) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		received, acked = int64(info.Bytes_received), int64(info.Bytes_acked)
		// What was written and not yet acknowledged (a slow reader) is
		// still on its way: it counts as written.
		if queued, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil && queued > 0 {
			acked += int64(queued)
		}
		// The counts are of sequence numbers, in which a FIN counts
		// one.
		switch info.State {
		case tcpCloseWait, tcpLastAck, tcpClosing, tcpTimeWait:
			received-- // the peer's FIN arrived
		}
		switch info.State {
		case tcpFinWait2, tcpTimeWait:
			acked-- // ours was acknowledged
		}
	})
	return received, acked
}

// sendQueue returns the bytes written to a TCP connection that its peer
// has not acknowledged yet (SIOCOUTQ), 0 once the connection is closed
// (the peer reset it: SIOCOUTQ keeps counting what will never be sent), or
// -1 when c is no TCP connection.
func sendQueue(c net.Conn) int {
	q := -1
	tcpControl(c, func(fd int) {
		if info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil && info.State == tcpClose {
			q = 0
			return
		}
		if n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
			q = n
		}
	})
	return q
}

// tcpControl calls f with c's socket when c is a TCP connection.
func tcpControl(c net.Conn, f func(fd int)) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { f(int(fd)) })
	}
}
