package sshdial_test

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// queued returns a socket's bytes waiting to be read (unix.SIOCINQ) or not
// yet acknowledged by its peer (unix.SIOCOUTQ).
func queued(t *testing.T, c *net.TCPConn, req uint) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	n := -1
	rc.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), req)
	})
	require.NoError(t, err)
	return n
}

// waitQueuesStill waits until the data stops moving from a master to
// client, which reads nothing: the master fills client's receive queue and
// accepted's send queue, and then holds the rest. It returns the two
// queues' bytes.
func waitQueuesStill(t *testing.T, client, accepted *net.TCPConn) (inq, outq int) {
	t.Helper()
	still := time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Since(still) < time.Second; {
		require.True(t, time.Now().Before(deadline), "the queues kept changing")
		time.Sleep(50 * time.Millisecond)
		in, out := queued(t, client, unix.SIOCINQ), queued(t, accepted, unix.SIOCOUTQ)
		if in != inq || out != outq || in == 0 {
			inq, outq, still = in, out, time.Now()
		}
	}
	return inq, outq
}

// A master that dies while the client reads nothing: what the master had
// written to the handed socket (in the client's receive queue and in the
// socket's send queue) still reaches the client, and only then the reset.
// The reset used to come at once and drop the send queue.
func TestHandOverMasterLostDeliversQueued(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControlPath(m.Sock))
	defer d.Close()
	const size = 4 << 20 // more than the client's receive buffer takes
	source := serve(t, "tcp", func(c net.Conn) {
		c.Write(make([]byte, size))
		io.Copy(io.Discard, c) // open until the tunnel ends
	})
	client, accepted, _, done := handedTo(t, d, source.Addr().String())
	inq, outq := waitQueuesStill(t, client, accepted)
	require.Positive(t, outq, "nothing in the send queue: the test shows nothing")
	m.Kill()
	<-m.Exited()
	time.Sleep(200 * time.Millisecond) // the forward's end is seen; the client still reads nothing

	client.SetDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, client)
	require.ErrorIs(t, err, syscall.ECONNRESET, "after %d bytes (nil is a clean EOF)", n)
	require.EqualValues(t, inq+outq, n, "the client's queue %d and the send queue %d", inq, outq)
	require.ErrorIs(t, waitErr(t, done), sshdial.ErrSSHConnectionLost)
}

// Close ends the wait for a client that takes nothing after the master
// died: Wait returns, and the client reads the reset.
func TestHandOverCloseEndsDrain(t *testing.T) {
	sshdial.SetDrainStall(t, time.Minute)
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControlPath(m.Sock))
	defer d.Close()
	source := serve(t, "tcp", testutil.Flood)
	client, accepted, f, done := handedTo(t, d, source.Addr().String())
	_, outq := waitQueuesStill(t, client, accepted)
	require.Positive(t, outq, "nothing in the send queue: the test shows nothing")
	m.Kill()
	<-m.Exited()
	sshdial.WaitBlockedIn(t, "sshdial.drainSendQueue")
	f.Close()
	require.ErrorIs(t, waitErr(t, done), sshdial.ErrSSHConnectionLost)
	client.SetDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, client)
	require.ErrorIs(t, err, syscall.ECONNRESET, "after %d bytes (nil is a clean EOF)", n)
}
