package sshdial

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
)

// stormServer is an SSH server that counts the logins and, while drop is
// set, drops every connection 10 ms after its login.
type stormServer struct {
	*sshtest.Server
	logins atomic.Int32
	drop   atomic.Bool
}

func newStormServer(t *testing.T) *stormServer {
	s := &stormServer{Server: sshtest.NewUnstartedServer()}
	auth := s.Config.PublicKeyCallback
	s.Config.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		p, err := auth(meta, key)
		if err == nil {
			s.logins.Add(1)
			if s.drop.Load() {
				time.AfterFunc(10*time.Millisecond, s.CloseClientConnections)
			}
		}
		return p, err
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// dialFor dials through d until the time is up (at most 2,000 dials),
// giving each dial 100 ms, as a program that keeps trying would.
func dialFor(d *Dialer, period time.Duration) {
	end := time.Now().Add(period)
	for i := 0; i < 2000 && time.Now().Before(end); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		if c, err := d.DialContext(ctx, "tcp", "127.0.0.1:1"); err == nil {
			c.Close()
		}
		cancel()
	}
}

// A server that drops every connection shortly after the login is not
// logged in to more than a few times a second: a login that does not last
// is no success for the backoff.
func TestReconnectStorm(t *testing.T) {
	srv := newStormServer(t)
	d := NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		return DialSSH(ctx, srv.Addr(), srv.ClientConfig())
	})
	defer d.Close()

	srv.drop.Store(true)
	const period = 3 * time.Second
	dialFor(d, period)
	srv.drop.Store(false)
	logins := srv.logins.Load()
	// Backoff from 250 ms doubling, with jitter on the upper half: at most
	// about 5 logins in 3 s; without it, one per dial.
	t.Logf("%d logins in %v", logins, period)
	if logins > 8 {
		t.Errorf("%d logins in %v to a server that drops every connection: the backoff is reset by each login", logins, period)
	}
	if logins < 2 {
		t.Errorf("%d logins in %v: the test did not reconnect at all", logins, period)
	}
}

// A connection that stayed up for backoffStable resets the backoff: the
// next one is made at once.
func TestReconnectAfterStableConnection(t *testing.T) {
	defer func(old time.Duration) { backoffStable = old }(backoffStable)
	backoffStable = 300 * time.Millisecond
	srv := newStormServer(t)
	d := NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		return DialSSH(ctx, srv.Addr(), srv.ClientConfig())
	})
	defer d.Close()

	// A few short-lived connections build a backoff up.
	for range 3 {
		waitUp(t, d)
		srv.CloseClientConnections()
		waitLost(t, d)
	}
	d.mu.Lock()
	failures := d.backoff.Failures()
	d.mu.Unlock()
	if failures < 3 {
		t.Fatalf("after 3 short-lived connections the backoff counts %d failures", failures)
	}

	// One that lasts resets it.
	waitUp(t, d)
	time.Sleep(2 * backoffStable)
	srv.CloseClientConnections()
	waitLost(t, d)
	d.mu.Lock()
	failures, wait := d.backoff.Failures(), d.backoff.Wait()
	d.mu.Unlock()
	if failures != 0 || wait > 0 {
		t.Errorf("after a connection that stayed up, the backoff counts %d failures and waits %v more", failures, wait)
	}
}

// waitLost waits until d has no SSH connection up (its watcher has
// recorded the loss in the backoff by then).
func waitLost(t *testing.T, d *Dialer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().SSHConnections > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the SSH connection was not dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUp dials through d until it has an SSH connection up.
func waitUp(t *testing.T, d *Dialer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for d.Stats().SSHConnections == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no SSH connection made in time")
		}
		dialFor(d, 50*time.Millisecond)
	}
}
