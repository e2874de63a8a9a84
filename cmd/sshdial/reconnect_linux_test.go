package main

import (
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// dropper relays TCP connections to an SSH server and, while dropping is
// on, cuts every relayed connection as soon as sshd logs a new login
// ("Accepted publickey"): a server that drops each connection right after
// the login.
type dropper struct {
	l        net.Listener
	target   string
	logins   func() int
	dropping atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted atomic.Int32 // TCP connections relayed
}

func newDropper(t *testing.T, target string, logins func() int) *dropper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dr := &dropper{l: l, target: target, logins: logins, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dr.accepted.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			dr.mu.Lock()
			dr.conns[c], dr.conns[up] = true, true
			dr.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close(); c.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
	go func() { // the cutter: polls sshd's log, bounded by the test's life
		defer wg.Done()
		seen := logins()
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := logins(); n != seen {
				seen = n
				if dr.dropping.Load() {
					dr.cutAll()
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		l.Close()
		dr.cutAll()
		wg.Wait()
	})
	return dr
}

func (dr *dropper) cutAll() {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	for c := range dr.conns {
		c.Close()
		delete(dr.conns, c)
	}
}

// stormCLI starts sshd (logging logins) behind a dropper, and the command
// through it with -L, -D and -R; clients(period) then keeps clients coming
// to -L and -D, 50 a second to each, for period.
func stormCLI(t *testing.T) (f *fixture, dr *dropper, logins func() int, clients func(time.Duration)) {
	f = newFixture(t, "LogLevel INFO")
	logins = func() int { return strings.Count(f.srv.Stderr(), "Accepted publickey") }
	dr = newDropper(t, f.srv.Addr, logins)
	_, dport, _ := net.SplitHostPort(dr.l.Addr().String())
	kh, err := os.ReadFile(f.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.knownHosts, []byte(strings.ReplaceAll(string(kh), "]:"+f.port+" ", "]:"+dport+" ")), 0o600); err != nil {
		t.Fatal(err)
	}
	echo := testutil.EchoServer(t, "tcp")
	args := f.args("--grace", "1s", "-L", "0:"+echo.Addr().String(), "-D", "0", "-R", "0:"+echo.Addr().String())
	for i, a := range args {
		if a == f.port {
			args[i] = dport
		}
	}
	c := startCLI(t, args...)
	lAddr, dAddr := c.addr("-L", 0), c.addr("-D", 0)
	conn := mustDial(t, lAddr)
	if err := testutil.RoundTrip(conn, "before"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	clients = func(period time.Duration) {
		end := time.Now().Add(period)
		var wg sync.WaitGroup
		for i := 0; i < 500 && time.Now().Before(end); i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if conn, err := net.DialTimeout("tcp", lAddr, time.Second); err == nil {
					conn.SetDeadline(time.Now().Add(2 * time.Second))
					testutil.RoundTrip(conn, "x")
					conn.Close()
				}
			}()
			go func() {
				defer wg.Done()
				// A SOCKS5 CONNECT to 127.0.0.1:1, given up after a
				// second (the dial waits for the SSH connection).
				if conn, err := net.DialTimeout("tcp", dAddr, time.Second); err == nil {
					conn.SetDeadline(time.Now().Add(time.Second))
					conn.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 1})
					conn.Read(make([]byte, 12))
					conn.Close()
				}
			}()
			time.Sleep(20 * time.Millisecond) // the load's pace
		}
		wg.Wait()
	}
	return f, dr, logins, clients
}

// stormPeriod is how long the storm tests keep clients coming; the bound
// on attempts in it: backoff from 250 ms doubling, with jitter on the
// upper half, makes about 6 in 5 s, where a reset by each login makes one
// every few ms.
const (
	stormPeriod = 5 * time.Second
	stormMax    = 12
)

// A server that drops every connection right after the login, while the
// command has -L, -D and -R open and clients keep connecting to them, is
// logged in to a few times a second at most (#17 item 6). The count is
// sshd's own log of logins.
func TestReconnectStormWithForwards(t *testing.T) {
	_, dr, logins, clients := stormCLI(t)
	dr.dropping.Store(true)
	dr.cutAll()
	before, relayedBefore := logins(), dr.accepted.Load()
	clients(stormPeriod)
	n, relayed := logins()-before, dr.accepted.Load()-relayedBefore
	t.Logf("%d logins, %d TCP connections in %v of drops right after the login", n, relayed, stormPeriod)
	if n > stormMax || relayed > stormMax {
		t.Errorf("%d logins (%d TCP connections) in %v to a server that drops every connection after the login: want a few a second at most", n, relayed, stormPeriod)
	}
	if n < 2 {
		t.Errorf("%d logins in %v: the test did not make sshdial reconnect", n, stormPeriod)
	}
}

// So is one that refuses the login every time, once the connection that
// worked is lost.
func TestReconnectStormRefusedLogin(t *testing.T) {
	f, dr, logins, clients := stormCLI(t)
	if err := os.WriteFile(f.srv.Dir+"/authorized_keys", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before, relayedBefore := logins(), dr.accepted.Load()
	dr.cutAll()
	clients(stormPeriod)
	relayed := dr.accepted.Load() - relayedBefore
	t.Logf("%d TCP connections in %v of refused logins", relayed, stormPeriod)
	if relayed > stormMax {
		t.Errorf("%d TCP connections in %v to a server that refuses the login: want a few a second at most", relayed, stormPeriod)
	}
	if relayed < 2 {
		t.Errorf("%d TCP connections in %v: the test did not make sshdial reconnect", relayed, stormPeriod)
	}
	if n := logins() - before; n != 0 {
		t.Errorf("%d logins with an empty authorized_keys", n)
	}
}

func mustDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}
