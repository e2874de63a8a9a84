package sshdial_test

import (
	"context"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/memconn"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// inBubble runs f inside a synctest bubble with a Conn through an sshtest
// server over in-memory pipes, and the target end of that Conn. Time in the
// bubble is fake: it moves only when every goroutine waits, so deadlines
// are tested to the nanosecond and without sleeping.
func inBubble(t *testing.T, f func(t *testing.T, conn *sshdial.Conn, target net.Conn)) {
	synctest.Test(t, func(t *testing.T) {
		srv := sshtest.NewUnstartedServer()
		targets := make(chan net.Conn, 1)
		srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
			ours, theirs := memconn.Pipe()
			targets <- theirs
			return ours, nil
		}
		clientEnd, serverEnd := memconn.Pipe()
		srv.ServeConn(serverEnd)
		sc, chans, reqs, err := ssh.NewClientConn(clientEnd, "memory", srv.ClientConfig())
		require.NoError(t, err)
		client := ssh.NewClient(sc, chans, reqs)

		c, err := sshdial.New(client).Dial("tcp", "backend.internal:5432")
		require.NoError(t, err)
		target := <-targets

		f(t, c.(*sshdial.Conn), target)

		c.Close()
		target.Close()
		client.Close()
		srv.Close()
	})
}

func TestDeadlineFiresOnTime(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		start := time.Now()
		conn.SetReadDeadline(start.Add(3 * time.Second))
		_, err := conn.Read(make([]byte, 10))
		requireTimeout(t, err, "read")
		require.Equal(t, 3*time.Second, time.Since(start))
	})
}

func TestDeadlineSetWhileBlocked(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		errc := make(chan error, 1)
		go func() {
			_, err := conn.Read(make([]byte, 10))
			errc <- err
		}()
		synctest.Wait() // the Read is blocked
		start := time.Now()
		time.Sleep(time.Minute)
		conn.SetReadDeadline(time.Now().Add(time.Second))
		requireTimeout(t, <-errc, "read")
		require.Equal(t, time.Minute+time.Second, time.Since(start))

		// A past deadline set while blocked wakes at once.
		go func() {
			_, err := conn.Read(make([]byte, 10))
			errc <- err
		}()
		conn.SetReadDeadline(time.Time{})
		synctest.Wait()
		before := time.Now()
		conn.SetReadDeadline(before.Add(-time.Second))
		requireTimeout(t, <-errc, "read")
		require.Equal(t, before, time.Now())
	})
}

func TestDeadlineRefreshedAfterFiring(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err := conn.Read(make([]byte, 10))
		requireTimeout(t, err, "read")

		// Data that arrives while the deadline has passed is not returned.
		target.Write([]byte("hello"))
		synctest.Wait()
		n, err := conn.Read(make([]byte, 10))
		require.Zero(t, n)
		requireTimeout(t, err, "read")

		// Moving the deadline makes Read work again, with nothing lost.
		conn.SetReadDeadline(time.Now().Add(time.Hour))
		buf := make([]byte, 5)
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "hello", string(buf))

		// Moving a pending deadline later keeps Read blocked until then.
		start := time.Now()
		conn.SetReadDeadline(start.Add(time.Second))
		conn.SetReadDeadline(start.Add(5 * time.Second))
		_, err = conn.Read(buf)
		requireTimeout(t, err, "read")
		require.Equal(t, 5*time.Second, time.Since(start))

		// Clearing it removes it.
		conn.SetReadDeadline(time.Now().Add(time.Second))
		conn.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(time.Hour)
			target.Write([]byte("late!"))
		}()
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "late!", string(buf))
	})
}

func TestWriteDeadlineReportsCommittedBytes(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		// The target reads nothing, so the channel window, the pipe and
		// the send buffer fill up.
		big := make([]byte, 16<<20)
		for i := range big {
			big[i] = byte(i % 251)
		}
		start := time.Now()
		conn.SetWriteDeadline(start.Add(2 * time.Second))
		n, err := conn.Write(big)
		requireTimeout(t, err, "write")
		require.Equal(t, 2*time.Second, time.Since(start))
		require.Positive(t, n)
		require.Less(t, n, len(big))

		// A past deadline commits nothing.
		m, err := conn.Write(big[n:])
		require.Zero(t, m)
		requireTimeout(t, err, "write")

		// After moving the deadline, the rest follows in order.
		conn.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := conn.Write(big[n:])
			if err == nil {
				err = conn.CloseWrite()
			}
			done <- err
		}()
		got, err := io.ReadAll(target)
		require.NoError(t, err)
		require.NoError(t, <-done)
		require.Equal(t, len(big), len(got))
		require.Equal(t, big, got)
	})
}

func TestReadAndWriteDeadlinesAreIndependent(t *testing.T) {
	inBubble(t, func(t *testing.T, conn *sshdial.Conn, target net.Conn) {
		conn.SetReadDeadline(time.Now().Add(-time.Second))
		_, err := conn.Write([]byte("ping"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(target, buf)
		require.NoError(t, err)

		conn.SetReadDeadline(time.Time{})
		conn.SetWriteDeadline(time.Now().Add(-time.Second))
		target.Write([]byte("pong"))
		_, err = io.ReadFull(conn, buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf))
	})
}
