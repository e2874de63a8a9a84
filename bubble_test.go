package sshdial_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/memconn"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// bubble is an sshtest server for a test that runs inside a
// testing/synctest bubble (inBubbleNet): the SSH connections to it and its
// connections to targets are memconn pipes, so synctest.Wait returns once
// every goroutine of the test, of the Conns and of the server is blocked,
// and time is the bubble's fake time. It replaces sleeping "until the
// background call is blocked" with knowing it is.
type bubble struct {
	srv *sshtest.Server

	mu      sync.Mutex
	targets map[string]func(net.Conn) // by address
}

// inBubbleNet runs f inside a synctest bubble with a new bubble server,
// closed when f's test ends (inside the bubble).
func inBubbleNet(t *testing.T, f func(t *testing.T, b *bubble)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		b := &bubble{srv: sshtest.NewUnstartedServer(), targets: map[string]func(net.Conn){}}
		b.srv.DialTarget = b.dialTarget
		t.Cleanup(b.srv.Close)
		f(t, b)
	})
}

// serve makes handle the target at the address it returns: each
// connection the server makes to that address runs handle on the other end
// of a memconn pipe, which is closed when handle returns. handle must
// return once the server closes its end (Close closes every target
// connection) or the test's cleanups have run.
func (b *bubble) serve(handle func(net.Conn)) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	addr := fmt.Sprintf("target%d.bubble:%d", len(b.targets)+1, 1000+len(b.targets))
	b.targets[addr] = handle
	return addr
}

func (b *bubble) dialTarget(ctx context.Context, network, address string) (net.Conn, error) {
	b.mu.Lock()
	handle := b.targets[address]
	b.mu.Unlock()
	if handle == nil {
		return nil, syscall.ECONNREFUSED
	}
	ours, theirs := memconn.Pipe()
	go func() {
		defer theirs.Close()
		handle(theirs)
	}()
	return ours, nil
}

// client returns a new SSH client of the server over a memconn pipe,
// closed when the test ends.
func (b *bubble) client(t *testing.T) *ssh.Client {
	t.Helper()
	clientEnd, serverEnd := memconn.Pipe()
	b.srv.ServeConn(serverEnd)
	sc, chans, reqs, err := ssh.NewClientConn(clientEnd, "bubble", b.srv.ClientConfig())
	require.NoError(t, err)
	c := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c
}

// faultServer returns the bubble's server with the faults the fault
// tests inject.
func (b *bubble) faultServer() *faultServer {
	return &faultServer{
		stall:      b.srv.Stall,
		resume:     b.srv.Resume,
		drop:       b.srv.CloseClientConnections,
		dialClient: b.client,
		serveTarget: func(t *testing.T, handle func(net.Conn)) string {
			return b.serve(handle)
		},
	}
}

// waitBlockedIn waits until a goroutine is parked in fn (see
// sshdial.WaitBlockedIn, in waitblocked_export_test.go).
var waitBlockedIn = sshdial.WaitBlockedIn

// inFaultBubble returns a subtest that runs f in a bubble (inBubbleNet),
// against the bubble's faultServer.
func inFaultBubble(f func(t *testing.T, srv *faultServer)) func(t *testing.T) {
	return func(t *testing.T) {
		inBubbleNet(t, func(t *testing.T, b *bubble) { f(t, b.faultServer()) })
	}
}
