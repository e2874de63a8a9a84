//go:build unix

package sshdial_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/handover"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
)

func handOver(t *testing.T, d *sshdial.Dialer, c net.Conn, network, address string) (handover.Forward, bool, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return handover.Func(d, ctx, c, network, address, nil)
}

// handedTo hands a new TCP connection to the master that d dials
// through, for target: it returns the connection's client end, the handed
// end, the Forward, and the result of its Wait, run in the background.
func handedTo(t *testing.T, d *sshdial.Dialer, target string) (client, accepted *net.TCPConn, f handover.Forward, done <-chan error) {
	t.Helper()
	client, accepted = testutil.TCPPair(t)
	f, handled, err := handOver(t, d, accepted, "tcp", target)
	require.NoError(t, err)
	require.True(t, handled)
	return client, accepted, f, waitForward(f)
}

// waitForward runs f.Wait in the background.
func waitForward(f handover.Forward) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := f.Wait()
		done <- err
	}()
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the handed-over forward did not end")
		return nil
	}
}

// A connection handed over to the master: the data goes by the master (one
// login for any number), Wait returns once the forward is over with the
// kernel's counts, and the client reads a clean EOF.
func TestHandOverThroughDialer(t *testing.T) {
	srv, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	target := serve(t, "tcp", func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write(append([]byte("got "), b...))
	})
	for i := 0; i < 5; i++ {
		client, accepted := testutil.TCPPair(t)
		f, handled, err := handOver(t, d, accepted, "tcp", target.Addr().String())
		require.NoError(t, err)
		require.True(t, handled)
		done := make(chan struct{})
		var sent, received int64
		var werr error
		go func() {
			sent, received, werr = f.Wait()
			close(done)
		}()
		client.SetDeadline(time.Now().Add(20 * time.Second))
		_, err = client.Write([]byte("question"))
		require.NoError(t, err)
		client.CloseWrite()
		b, err := io.ReadAll(client)
		require.NoError(t, err, "a clean EOF after the answer")
		require.Equal(t, "got question", string(b))
		<-done
		require.NoError(t, werr)
		if runtime.GOOS == "linux" {
			require.Equal(t, int64(len("question")), sent)
			require.Equal(t, int64(len("got question")), received)
		}
		// Wait again says the same.
		s2, r2, err2 := f.Wait()
		require.Equal(t, []any{sent, received, werr}, []any{s2, r2, err2})
	}
	require.Equal(t, 1, logins(srv))
	st := d.Stats()
	require.EqualValues(t, 5, st.Dials)
	if runtime.GOOS == "linux" {
		require.EqualValues(t, 5*len("question"), st.BytesSent)
	}
}

// A master killed mid-download: Wait's error matches ErrSSHConnectionLost,
// the client reads a reset, never a clean EOF, and the next hand-over is
// not handled (the Dialer falls back to its own SSH connection).
func TestHandOverMasterLost(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControlPath(m.Sock))
	defer d.Close()
	source := serve(t, "tcp", testutil.Flood)
	client, _, _, done := handedTo(t, d, source.Addr().String())
	client.SetDeadline(time.Now().Add(30 * time.Second))
	_, err := io.ReadFull(client, make([]byte, 1<<20))
	require.NoError(t, err)
	m.Kill()
	n, err := io.Copy(io.Discard, client)
	require.ErrorIs(t, err, syscall.ECONNRESET, "after %d more bytes (nil is a clean EOF)", n)
	require.ErrorIs(t, waitErr(t, done), sshdial.ErrSSHConnectionLost)
	require.Empty(t, d.Stats().ControlPath, "Stats still names the master that the forward found gone")

	_, accepted2 := testutil.TCPPair(t)
	f, handled, err := handOver(t, d, accepted2, "tcp", source.Addr().String())
	require.False(t, handled)
	require.NoError(t, err)
	require.Nil(t, f)
	accepted2.Close()
}

// The Dialer's Close ends handed-over forwards: Wait says ErrDialerClosed,
// the client reads a reset; Close of the Forward does the same with
// net.ErrClosed. A closed Dialer hands nothing over.
func TestHandOverClose(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	target := serve(t, "tcp", echo)

	client, accepted := testutil.TCPPair(t)
	f, _, err := handOver(t, d, accepted, "tcp", target.Addr().String())
	require.NoError(t, err)
	done := waitForward(f)
	require.NoError(t, testutil.RoundTrip(client, "x"))
	require.NoError(t, f.Close())
	require.ErrorIs(t, waitErr(t, done), net.ErrClosed)
	client.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = client.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET)

	client, accepted = testutil.TCPPair(t)
	f, _, err = handOver(t, d, accepted, "tcp", target.Addr().String())
	require.NoError(t, err)
	done = waitForward(f)
	require.NoError(t, testutil.RoundTrip(client, "y"))
	require.NoError(t, d.Close())
	require.ErrorIs(t, waitErr(t, done), sshdial.ErrDialerClosed)
	client.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = client.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET)

	_, accepted = testutil.TCPPair(t)
	defer accepted.Close()
	_, handled, err := handOver(t, d, accepted, "tcp", target.Addr().String())
	require.True(t, handled)
	require.ErrorIs(t, err, sshdial.ErrDialerClosed)
}

// What is not handed over: a Dialer without a control path, a connection
// without a socket, a nil Dialer; bad addresses fail as DialContext's do;
// a refused target is an *OpenError and leaves the connection open.
func TestHandOverNotHandled(t *testing.T) {
	_, m := sshdWithMaster(t)
	target := serve(t, "tcp", echo)
	_, accepted := testutil.TCPPair(t)
	defer accepted.Close()

	plain := sshdial.New(nil)
	defer plain.Close()
	f, handled, err := handOver(t, plain, accepted, "tcp", target.Addr().String())
	require.False(t, handled)
	require.NoError(t, err)
	require.Nil(t, f)

	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	_, handled, _ = handOver(t, d, p1, "tcp", target.Addr().String())
	require.False(t, handled, "a net.Pipe has no socket")
	var nilDialer *sshdial.Dialer
	_, handled, _ = handOver(t, nilDialer, accepted, "tcp", target.Addr().String())
	require.False(t, handled)

	for _, bad := range [][2]string{{"udp", "127.0.0.1:1"}, {"tcp", "127.0.0.1:99999"}, {"tcp", "nohost"}} {
		_, handled, err = handOver(t, d, accepted, bad[0], bad[1])
		require.True(t, handled, "%v", bad)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe, "%v", bad)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	l.Close()
	_, handled, err = handOver(t, d, accepted, "tcp", closed)
	require.True(t, handled)
	require.ErrorIs(t, err, sshdial.ErrTargetUnreachable)
	// Still the caller's, and usable.
	require.NoError(t, accepted.SetDeadline(time.Time{}))

	// No master under ControlRequired: handled, and it says so.
	none := sshdial.New(nil, sshdial.WithControl(filepath.Join(testutil.ShortTempDir(t), "none"), sshdial.ControlRequired))
	defer none.Close()
	_, handled, err = handOver(t, none, accepted, "tcp", target.Addr().String())
	require.True(t, handled)
	require.True(t, errors.Is(err, sshdial.ErrNoControlMaster), "%v", err)
}

// before runs once the master is found and before the connection is
// given to it: what it writes reaches the client ahead of the target's
// data (a proxy's answer), and its error is the dial's.
func TestHandOverBefore(t *testing.T) {
	_, m := sshdWithMaster(t)
	d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
	defer d.Close()
	// The target speaks first.
	target := serve(t, "tcp", func(c net.Conn) { c.Write([]byte("banner")) })
	client, accepted := testutil.TCPPair(t)
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, handled, err := handover.Func(d, ctx, accepted, "tcp", target.Addr().String(), func() error {
		calls++
		_, err := accepted.Write([]byte("answer:"))
		return err
	})
	require.NoError(t, err)
	require.True(t, handled)
	done := waitForward(f)
	client.SetDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(client)
	require.NoError(t, err)
	require.Equal(t, "answer:banner", string(b))
	require.NoError(t, waitErr(t, done))
	require.Equal(t, 1, calls)

	_, accepted = testutil.TCPPair(t)
	defer accepted.Close()
	oops := errors.New("oops")
	_, handled, err = handover.Func(d, ctx, accepted, "tcp", target.Addr().String(), func() error { return oops })
	require.True(t, handled)
	require.ErrorIs(t, err, oops)
}
