package sshdial_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/assert"
	"golang.org/x/crypto/ssh"
)

// floodServer is an SSH server (x/crypto's, no authentication) that
// echoes on every direct-tcpip channel it accepts and, once a client is
// logged in, does what attack says with the connection; attack runs in a
// goroutine of its own and gets a channel that is closed when the test
// ends; it returns how many messages it sent, which floodServer delivers
// on the channel it returns with the address.
func floodServer(t *testing.T, attack func(conn *ssh.ServerConn, opened <-chan ssh.Channel, stop <-chan struct{}) int) (string, <-chan int) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	config := &ssh.ServerConfig{NoClientAuth: true}
	config.AddHostKey(signer)
	stop := make(chan struct{})
	sent := make(chan int, 1)
	var wg sync.WaitGroup
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		conn, chans, reqs, err := ssh.NewServerConn(c, config)
		if err != nil {
			return
		}
		defer conn.Close()
		wg.Add(1)
		go func() { defer wg.Done(); ssh.DiscardRequests(reqs) }()
		opened := make(chan ssh.Channel, 16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sent <- attack(conn, opened, stop):
			default:
			}
		}()
		for nc := range chans {
			if nc.ChannelType() != "direct-tcpip" {
				nc.Reject(ssh.UnknownChannelType, "no")
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); ssh.DiscardRequests(creqs) }()
			go func() { defer wg.Done(); io.Copy(ch, ch); ch.CloseWrite() }()
			select {
			case opened <- ch:
			default:
			}
		}
	})
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return l.Addr().String(), sent
}

// floodDialer is a Dialer of one SSH connection to addr, closed when the
// test ends.
func floodDialer(t *testing.T, addr string) *sshdial.Dialer {
	t.Helper()
	config := &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	d := sshdial.NewPool(1, func(ctx context.Context) (*ssh.Client, error) {
		return sshdial.DialSSH(ctx, addr, config)
	}, sshdial.WithKeepalive(time.Second, 10*time.Second))
	t.Cleanup(func() { d.Close() })
	return d
}

// floodRoundTrip dials through d and echoes msg; it fails the test if
// that does not work within 20 s.
func floodRoundTrip(t *testing.T, d *sshdial.Dialer, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", "127.0.0.1:7")
	if err != nil {
		t.Fatalf("dial during %s: %v", msg, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := testutil.RoundTrip(c, msg); err != nil {
		t.Fatalf("round trip during %s: %v", msg, err)
	}
}

// boundedGoroutines fails the test if the process has more than limit
// goroutines more than base, after giving them time to end.
func boundedGoroutines(t *testing.T, base, limit int, what string) {
	t.Helper()
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= base+limit }, 5*time.Second, 50*time.Millisecond,
		"%s: more goroutines than %d before: the client grows with the flood", what, base)
}

// A hostile SSH server that floods the client with global requests (with
// and without want-reply), with channel opens of types nobody handles, and
// with requests on a tunnel's channel, neither stops the client's tunnels
// nor grows its goroutines without bound; the SSH connection stays (no
// reconnect).
func TestHostileServerFloods(t *testing.T) {
	const n = 5000
	for _, tc := range []struct {
		name   string
		attack func(conn *ssh.ServerConn, opened <-chan ssh.Channel, stop <-chan struct{}) int
	}{
		{"global requests", func(conn *ssh.ServerConn, _ <-chan ssh.Channel, stop <-chan struct{}) int {
			var count atomic.Int32
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n/8; i++ {
						if _, _, err := conn.SendRequest("flood@evil", i%2 == 0, make([]byte, 1000)); err != nil {
							return
						}
						count.Add(1)
					}
				}()
			}
			wg.Wait()
			return int(count.Load())
		}},
		{"unknown channel types", func(conn *ssh.ServerConn, _ <-chan ssh.Channel, stop <-chan struct{}) int {
			var count atomic.Int32
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n/8; i++ {
						ch, reqs, err := conn.OpenChannel("flood@evil", make([]byte, 1000))
						if err == nil {
							go ssh.DiscardRequests(reqs)
							ch.Close()
							return // accepted: not what this client should do
						}
						var open *ssh.OpenChannelError
						if !errors.As(err, &open) || open.Reason != ssh.UnknownChannelType {
							return
						}
						count.Add(1)
					}
				}()
			}
			wg.Wait()
			return int(count.Load())
		}},
		{"channel requests", func(conn *ssh.ServerConn, opened <-chan ssh.Channel, stop <-chan struct{}) int {
			var ch ssh.Channel
			select {
			case ch = <-opened:
			case <-stop:
				return 0
			}
			for i := 0; i < n; i++ {
				if _, err := ch.SendRequest("flood@evil", i%2 == 0, make([]byte, 1000)); err != nil {
					return i
				}
			}
			return n
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, sent := floodServer(t, tc.attack)
			base := runtime.NumGoroutine()
			d := floodDialer(t, addr)
			// A tunnel held open across the flood: the channel that the
			// server floods with requests.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			held, err := d.DialContext(ctx, "tcp", "127.0.0.1:7")
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			held.SetDeadline(time.Now().Add(90 * time.Second))
			for i := 0; i < 20; i++ {
				floodRoundTrip(t, d, tc.name)
				time.Sleep(20 * time.Millisecond) // on purpose: the round trips are spread over the flood
			}
			select {
			case got := <-sent:
				if got != n {
					t.Errorf("the server sent %d of its %d messages", got, n)
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("the flood did not end within 60 s")
			}
			if err := testutil.RoundTrip(held, "held across "+tc.name); err != nil {
				t.Errorf("the tunnel held across the flood: %v", err)
			}
			held.Close()
			boundedGoroutines(t, base, 60, tc.name)
			floodRoundTrip(t, d, "after "+tc.name)
			if st := d.Stats(); st.Reconnects != 0 {
				t.Errorf("%d reconnects: the flood cost the SSH connection", st.Reconnects)
			}
		})
	}
}
