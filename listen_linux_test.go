package sshdial_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/backoff"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestListenSurvivesServerRestart (Connect): kill -9 of sshd and a
// restart; a new connection to the forwarded port reaches the same
// http.Serve, on the same port.
func TestListenSurvivesServerRestart(t *testing.T) {
	srv := opensshd.Start(t)
	homeFor(t, srv)
	d := connectTo(t, srv)
	l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveHTTP(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "same server")
	}))
	addr := l.Addr().String()
	body, err := get("http://" + addr + "/")
	require.NoError(t, err)
	require.Equal(t, "same server", body)

	srv.Signal(syscall.SIGKILL, true)
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool {
		body, err := get("http://" + addr + "/")
		return err == nil && body == "same server"
	}, 30*time.Second, 100*time.Millisecond, "the forward comes back after the restart")
	require.Equal(t, addr, l.Addr().String(), "on the same port")
	require.EqualValues(t, 1, d.Stats().Reconnects)
}

// TestListenMovesWhenItsPortIsTaken (Connect): the port a listener of port
// 0 had is taken while sshd is down; after the restart the forward comes
// back on another port, Addr reports it, and a log event says so.
func TestListenMovesWhenItsPortIsTaken(t *testing.T) {
	srv := opensshd.Start(t)
	homeFor(t, srv)
	logs := &testutil.SyncBuffer{}
	d := connectTo(t, srv, sshdial.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveHTTP(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "moved")
	}))
	old := l.Addr().String()

	srv.Signal(syscall.SIGKILL, true)
	var squatter net.Listener
	require.Eventually(t, func() bool {
		squatter, err = net.Listen("tcp", old) // free once sshd's session is gone
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	defer squatter.Close()
	require.NoError(t, srv.Restart())

	require.Eventually(t, func() bool { return l.Addr().String() != old }, 30*time.Second, 50*time.Millisecond,
		"the forward comes back on another port")
	body, err := get("http://" + l.Addr().String() + "/")
	require.NoError(t, err)
	require.Equal(t, "moved", body)
	require.Contains(t, logs.String(), "listens on another port")
}

// TestListenRefusedAfterRestart (Connect): the port a listener asked for
// by number is taken while sshd is down; after the restart the server
// refuses the forward, and Accept fails with an error wrapping
// ErrForwardRefused that names the port: the listener asked for that port,
// not any.
func TestListenRefusedAfterRestart(t *testing.T) {
	old := backoff.SetRefusedPatience(3 * time.Second)
	t.Cleanup(func() { backoff.SetRefusedPatience(old) })
	srv := opensshd.Start(t)
	homeFor(t, srv)
	d := connectTo(t, srv)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := free.Addr().String()
	free.Close()
	l, err := d.Listen(context.Background(), "tcp", addr)
	require.NoError(t, err)
	defer l.Close()
	res := backgroundAccept(l)

	srv.Signal(syscall.SIGKILL, true)
	var squatter net.Listener
	require.Eventually(t, func() bool {
		squatter, err = net.Listen("tcp", addr) // free once sshd's session is gone
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	defer squatter.Close()
	require.NoError(t, srv.Restart())

	err = await(t, 30*time.Second, "Accept after the forward was refused", res)
	require.ErrorIs(t, err, sshdial.ErrForwardRefused)
	_, port, _ := net.SplitHostPort(addr)
	require.Contains(t, err.Error(), ":"+port+" ")
	_, err = l.Accept()
	require.ErrorIs(t, err, sshdial.ErrForwardRefused, "for good")
}

// TestListenRefusedUntilPortFree (Connect): after a reconnect the server
// refuses the forward while its port is taken (as by the lost
// connection's own session, which the server has not yet noticed is
// gone); the refusal is asked again, and once the port is free the forward
// comes back on it and Accept goes on.
func TestListenRefusedUntilPortFree(t *testing.T) {
	old := backoff.SetRefusedPatience(2 * time.Minute)
	t.Cleanup(func() { backoff.SetRefusedPatience(old) })
	srv := opensshd.Start(t)
	homeFor(t, srv)
	logs := &testutil.SyncBuffer{}
	d := connectTo(t, srv, sshdial.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := free.Addr().String()
	free.Close()
	l, err := d.Listen(context.Background(), "tcp", addr)
	require.NoError(t, err)
	serveHTTP(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "back")
	}))

	srv.Signal(syscall.SIGKILL, true)
	var squatter net.Listener
	require.Eventually(t, func() bool {
		squatter, err = net.Listen("tcp", addr) // free once sshd's session is gone
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, srv.Restart())
	refusals := func() int { return strings.Count(logs.String(), "asking again") }
	require.Eventually(t, func() bool { return refusals() >= 2 }, 60*time.Second, 20*time.Millisecond,
		"the refused forward is asked again")
	squatter.Close()
	require.Eventually(t, func() bool {
		body, err := get("http://" + addr + "/")
		return err == nil && body == "back"
	}, 60*time.Second, 100*time.Millisecond, "the forward comes back on its port once it is free")
	require.Equal(t, addr, l.Addr().String())
}
