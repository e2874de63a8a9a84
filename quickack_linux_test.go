package sshdial

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// tcpPair returns a QuickAck-wrapped client end and the plain server end
// of a loopback TCP connection, closed when the test ends.
func tcpPair(t *testing.T) (*quickAckConn, *net.TCPConn) {
	t.Helper()
	q, s, err := newTCPPair()
	require.NoError(t, err)
	t.Cleanup(func() { q.Close(); s.Close() })
	return q, s
}

// newTCPPair is tcpPair for callers off the test's goroutine: it returns
// an error instead of failing a test, and the caller closes both ends.
func newTCPPair() (*quickAckConn, *net.TCPConn, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	s, err := l.Accept()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	q, ok := QuickAck(c).(*quickAckConn)
	if !ok {
		c.Close()
		s.Close()
		return nil, nil, errors.New("QuickAck did not wrap a *net.TCPConn")
	}
	return q, s.(*net.TCPConn), nil
}

func TestQuickAckConformance(t *testing.T) {
	// nettest calls the MakePipe on the goroutines of its subtests, where
	// t must not fail.
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b, err := newTCPPair()
		if err != nil {
			return nil, nil, nil, err
		}
		return a, QuickAck(b), func() { a.Close(); b.Close() }, nil
	})
}

// waitQueued waits until the socket of c holds n bytes not yet read.
func waitQueued(t *testing.T, c *quickAckConn, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var queued int
		c.raw.Control(func(fd uintptr) {
			queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		})
		return queued >= n
	}, 5*time.Second, time.Millisecond)
}

func TestQuickAckBatchesReads(t *testing.T) {
	q, s := tcpPair(t)
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	go func() { s.Write(data); s.CloseWrite() }()
	waitQueued(t, q, len(data))

	buf := make([]byte, 4096) // x/crypto's read size
	n, err := q.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 4096, n)
	require.Equal(t, len(data)-n, len(q.pending), "one read system call took all that was queued")

	got := append([]byte(nil), buf[:n]...)
	for len(got) < len(data) {
		n, err := q.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	require.True(t, bytes.Equal(data, got))
	require.Nil(t, q.batch, "a drained batch goes back to the pool")
	_, err = q.Read(buf)
	require.Equal(t, io.EOF, err)
}

func TestQuickAckCopyKeepsBufferedBytes(t *testing.T) {
	q, s := tcpPair(t)
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	s.Write(data)
	waitQueued(t, q, len(data))
	head := make([]byte, 1024)
	_, err := io.ReadFull(q, head)
	require.NoError(t, err)
	require.NotEmpty(t, q.pending)
	s.Close()

	var rest bytes.Buffer
	n, err := io.Copy(&rest, q) // takes q.WriteTo
	require.NoError(t, err)
	require.Equal(t, int64(len(data)-len(head)), n)
	require.True(t, bytes.Equal(data, append(head, rest.Bytes()...)))
}

func TestQuickAckDeadlineWithBufferedBytes(t *testing.T) {
	q, s := tcpPair(t)
	s.Write(bytes.Repeat([]byte("x"), 64<<10))
	waitQueued(t, q, 64<<10)
	buf := make([]byte, 4096)
	_, err := q.Read(buf)
	require.NoError(t, err)
	require.NotEmpty(t, q.pending)

	require.NoError(t, q.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err = q.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout())

	require.NoError(t, q.SetDeadline(time.Time{}))
	n, err := q.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 4096, n, "the buffered bytes are still there")

	// With nothing buffered and nothing queued, a deadline ends the wait.
	for len(q.pending) > 0 {
		_, err := q.Read(buf)
		require.NoError(t, err)
	}
	require.NoError(t, q.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = q.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestQuickAckReadErrors(t *testing.T) {
	t.Run("reset seen by Read", func(t *testing.T) {
		q, s := tcpPair(t)
		s.SetLinger(0)
		s.Close()
		require.Eventually(t, func() bool { // the RST arrived
			var state uint8
			q.raw.Control(func(fd uintptr) {
				if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
					state = info.State
				}
			})
			return state == unix.BPF_TCP_CLOSE
		}, 5*time.Second, time.Millisecond)
		_, err := q.Read(make([]byte, 4096))
		require.ErrorIs(t, err, syscall.ECONNRESET, "a reset is not turned into EOF")
		var op *net.OpError
		require.ErrorAs(t, err, &op)
		require.Equal(t, "read", op.Op)
	})
	t.Run("closed with buffered bytes", func(t *testing.T) {
		q, s := tcpPair(t)
		s.Write(make([]byte, 16<<10))
		waitQueued(t, q, 16<<10)
		_, err := q.Read(make([]byte, 1024))
		require.NoError(t, err)
		require.NotEmpty(t, q.pending)
		require.NoError(t, q.Close())
		_, err = q.Read(make([]byte, 1024))
		require.ErrorIs(t, err, net.ErrClosed)
	})
	t.Run("close wakes a waiting read", func(t *testing.T) {
		q, _ := tcpPair(t)
		errc := make(chan error, 1)
		go func() { _, err := q.Read(make([]byte, 1024)); errc <- err }()
		WaitBlockedIn(t, "sshdial.(*quickAckConn).Read")
		q.Close()
		select {
		case err := <-errc:
			require.ErrorIs(t, err, net.ErrClosed)
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake the read")
		}
	})
}
