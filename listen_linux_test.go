package sshdial_test

import (
	"context"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
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
