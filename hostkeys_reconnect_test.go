package sshdial_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/crypto/ssh"
)

// keyServer is an SSH server with no authentication whose host key the
// test can change; swapKey also drops its connections.
type keyServer struct {
	addr  string
	key   atomic.Pointer[ssh.Signer]
	mu    sync.Mutex
	conns []net.Conn
}

func newKeyServer(t *testing.T) *keyServer {
	s := &keyServer{}
	s.swapKey(t)
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		config := &ssh.ServerConfig{NoClientAuth: true}
		config.AddHostKey(*s.key.Load())
		conn, chans, reqs, err := ssh.NewServerConn(c, config)
		if err != nil {
			return
		}
		defer conn.Close()
		go ssh.DiscardRequests(reqs)
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(creqs)
			go func() { io.Copy(ch, ch); ch.Close() }()
		}
	})
	s.addr = l.Addr().String()
	return s
}

func (s *keyServer) swapKey(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s.key.Store(&signer)
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
}

// With `StrictHostKeyChecking no` and `UserKnownHostsFile /dev/null` (a
// pair copied everywhere), a Dialer that accepted the server's key refuses
// another key from the same host when it reconnects: the key changed while
// it ran, which no known_hosts file will say.
func TestHostKeyChangedOnReconnectWithNothingRecorded(t *testing.T) {
	newHome(t)
	srv := newKeyServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, "tester@"+srv.addr, sshdial.WithStrictHostKeyChecking("no"),
		sshdial.WithKnownHostsFile("/dev/null"), sshdial.WithConnectTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	echoOnce := func() error {
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:7")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return testutil.RoundTrip(c, "x")
	}
	if err := echoOnce(); err != nil {
		t.Fatal(err)
	}
	srv.swapKey(t)
	var last error
	for i := 0; i < 3; i++ { // the first dial may find the old connection
		if last = echoOnce(); last != nil && errors.Is(last, sshdial.ErrHostKeyChanged) {
			break
		}
	}
	if !errors.Is(last, sshdial.ErrHostKeyChanged) {
		t.Errorf("after the server's key changed: %v, want %v", last, sshdial.ErrHostKeyChanged)
	}
	if n := d.Stats().Reconnects; n != 0 {
		t.Errorf("%d reconnects through a changed host key", n)
	}
}
