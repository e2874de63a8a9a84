package sshdial_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// stuckAgent is an ssh-agent that lists its keys at once and, while stuck
// is set, answers no signature request until the test ends: an agent
// waiting for an ssh-add -c confirmation or a FIDO touch.
type stuckAgent struct {
	agent.Agent
	sock    string
	stuck   atomic.Bool
	signs   atomic.Int32 // signature requests received
	release chan struct{}
}

func (a *stuckAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	a.signs.Add(1)
	if a.stuck.Load() {
		<-a.release
		return nil, errors.New("stuckAgent: released")
	}
	return a.Agent.Sign(key, data)
}

// startStuckAgent serves an agent holding key on a unix socket until the
// test ends.
func startStuckAgent(t *testing.T, key ed25519.PrivateKey) *stuckAgent {
	keyring := agent.NewKeyring()
	require.NoError(t, keyring.Add(agent.AddedKey{PrivateKey: key}))
	a := &stuckAgent{
		Agent:   keyring,
		sock:    filepath.Join(testutil.ShortTempDir(t), "agent.sock"),
		release: make(chan struct{}),
	}
	l, err := net.Listen("unix", a.sock)
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(a.release)
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				agent.ServeAgent(a, c)
			}()
		}
	}()
	return a
}

// An ssh-agent that never answers a signature request holds neither
// Connect past its context, nor a reconnect past ConnectTimeout, nor Close.
func TestConnectStuckAgent(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pub, err := ssh.NewPublicKey(key.Public())
	require.NoError(t, err)
	srv := sshtest.NewUnstartedServer()
	srv.Config.PublicKeyCallback = func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(pub.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}
	srv.Start()
	t.Cleanup(srv.Close) // after the agent's release, which the cleanups run first
	h := newHome(t)
	h.write(t, "known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s", portOf(srv.Addr()), ssh.MarshalAuthorizedKey(srv.HostKey())))
	a := startStuckAgent(t, key)
	dest := "tester@" + srv.Addr()

	// within runs f and reports whether it returned within limit; if not,
	// the test fails and f goes on until the agent is released, at the
	// test's end. It never blocks longer than limit, so that a hang found
	// fails the test instead of stopping it.
	within := func(t *testing.T, what string, limit time.Duration, f func()) bool {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		select {
		case <-done:
			return true
		case <-time.After(limit):
			t.Errorf("%s did not return within %v with the agent stuck", what, limit)
			return false
		}
	}
	closeWithin := func(t *testing.T, d *sshdial.Dialer) {
		within(t, "Close", 15*time.Second, func() { d.Close() })
	}

	t.Run("connect", func(t *testing.T) {
		a.stuck.Store(true)
		defer a.stuck.Store(false)
		before := a.signs.Load()
		// Long enough for the login to reach the agent on a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var err error
		if !within(t, "Connect", 15*time.Second, func() {
			_, err = sshdial.Connect(ctx, dest, sshdial.WithAgentSocket(a.sock))
		}) {
			return
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Greater(t, a.signs.Load(), before, "the agent was not asked to sign: the test proves nothing")
	})

	t.Run("reconnect", func(t *testing.T) {
		d, err := sshdial.Connect(context.Background(), dest, sshdial.WithAgentSocket(a.sock),
			sshdial.WithConnectTimeout(time.Second))
		require.NoError(t, err)
		defer closeWithin(t, d)
		requireEchoThrough(t, d)

		a.stuck.Store(true)
		defer a.stuck.Store(false)
		before := a.signs.Load()
		srv.CloseClientConnections()
		var dialErr error
		start := time.Now()
		if !within(t, "a dial that reconnects", 15*time.Second, func() {
			// The first dial may still find the old connection; the
			// reconnect comes with the next.
			for i := 0; i < 3 && a.signs.Load() == before; i++ {
				var c net.Conn
				if c, dialErr = d.Dial("tcp", "127.0.0.1:1"); c != nil {
					c.Close()
				}
			}
		}) {
			return
		}
		took := time.Since(start)
		require.Greater(t, a.signs.Load(), before, "no reconnect asked the agent: the test proves nothing")
		require.ErrorIs(t, dialErr, context.DeadlineExceeded)
		t.Logf("a dial whose reconnect met a stuck agent took %v (ConnectTimeout 1s): %v", took, dialErr)
	})

	t.Run("close", func(t *testing.T) {
		d, err := sshdial.Connect(context.Background(), dest, sshdial.WithAgentSocket(a.sock),
			sshdial.WithConnectTimeout(time.Hour))
		require.NoError(t, err)
		defer closeWithin(t, d) // a second Close, for a test that failed before the first
		a.stuck.Store(true)
		defer a.stuck.Store(false)
		before := a.signs.Load()
		srv.CloseClientConnections()
		dialed := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				c, err := d.Dial("tcp", "127.0.0.1:1")
				if c != nil {
					c.Close()
				}
				if errors.Is(err, sshdial.ErrDialerClosed) || a.signs.Load() > before || i == 1000 {
					dialed <- err
					return
				}
			}
		}()
		require.Eventually(t, func() bool { return a.signs.Load() > before }, 15*time.Second, 10*time.Millisecond,
			"no reconnect asked the agent")
		if !within(t, "Close", 15*time.Second, func() { d.Close() }) {
			return
		}
		select {
		case <-dialed:
		case <-time.After(15 * time.Second):
			t.Fatal("the dial waiting for the reconnect did not return after Close")
		}
	})
}
