package sshdial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// keepaliveRequest is the global request that proves the server alive: any
// reply counts (OpenSSH answers it with a failure).
const keepaliveRequest = "keepalive@openssh.com"

// link is the SSH connection under a Dialer, as its Conns and its keepalive
// check see it: it answers whether the connection is still up.
//
// x/crypto ends every channel's data with io.EOF when the connection is
// lost, exactly as when the server sent EOF, and does so before Client.Wait
// returns. But it handles the connection's packets in order, in one
// goroutine: so when a request sent after a channel's EOF gets a reply, the
// EOF was the server's, and when the request fails instead, the connection
// was lost. One request in flight serves every caller that asked before it
// was sent.
//
// The only case this reports wrongly is a connection lost after a real EOF
// and before the reply: the EOF then reads as a lost connection, which is
// the safe side (data is never taken as complete when it might not be).
type link struct {
	client *ssh.Client

	mu      sync.Mutex
	asked   []chan<- error // callers waiting for a request not yet sent
	probing bool           // probeLoop runs

	waitOnce sync.Once
	watch    *clientWatch // set by the first wait
}

func newLink(client *ssh.Client) *link {
	return &link{client: client}
}

// clientWatch is the one goroutine per *ssh.Client that waits for its end,
// shared by every link over that client: a program that wraps one client
// of its own in a Dialer per use (New, Close) must not leave a goroutine
// behind per Dialer, blocked in client.Wait for as long as the client
// lives.
type clientWatch struct {
	ended chan struct{} // closed once client.Wait returned
	err   error         // what client.Wait returned; set before ended is closed
}

var (
	watchesMu sync.Mutex
	watches   = map[*ssh.Client]*clientWatch{} // clients whose Wait has not returned
)

// watchClient returns client's watch, starting it on first use.
func watchClient(client *ssh.Client) *clientWatch {
	watchesMu.Lock()
	defer watchesMu.Unlock()
	if w, ok := watches[client]; ok {
		return w
	}
	w := &clientWatch{ended: make(chan struct{})}
	watches[client] = w
	go func() {
		w.err = client.Wait()
		watchesMu.Lock()
		delete(watches, client)
		watchesMu.Unlock()
		close(w.ended)
	}()
	return w
}

// probe sends a keepalive request after this call and reports, once, nil if
// the server answered, or else the error of the request (the connection
// ended).
func (l *link) probe() <-chan error {
	reply := make(chan error, 1)
	l.mu.Lock()
	l.asked = append(l.asked, reply)
	if !l.probing {
		l.probing = true
		go l.probeLoop()
	}
	l.mu.Unlock()
	return reply
}

// probeLoop sends one request for everybody who asked meanwhile, until
// nobody waits.
func (l *link) probeLoop() {
	l.mu.Lock()
	for len(l.asked) > 0 {
		batch := l.asked
		l.asked = nil
		l.mu.Unlock()
		// It waits as long as the server does: only a reply or the end of
		// the connection returns it.
		_, _, err := l.client.SendRequest(keepaliveRequest, true, nil)
		for _, reply := range batch {
			reply <- err
		}
		l.mu.Lock()
	}
	l.probing = false
	l.mu.Unlock()
}

// wait returns a channel that is closed once the SSH connection has ended.
func (l *link) wait() <-chan struct{} {
	l.waitOnce.Do(func() { l.watch = watchClient(l.client) })
	return l.watch.ended
}

// endErr is what client.Wait returned; call it after wait's channel is
// closed.
func (l *link) endErr() error { return l.watch.err }

// classify says why a call on a channel of this connection failed with
// err: ok when the connection is still up (so the server ended the
// channel), or else why the connection ended, wrapping ErrSSHConnectionClosed
// when it was closed here and ErrSSHConnectionLost otherwise. It gives up and
// returns ok when done is closed first: the caller must then report the
// close, not ok. A nil link (a Conn made without a
// Dialer, in tests) takes io.EOF as the server's.
func (l *link) classify(err error, done <-chan struct{}, ok error) error {
	if l == nil {
		if err == io.EOF {
			return ok
		}
		return err
	}
	if isClosed(done) {
		return ok // nobody will look: do not ask the server
	}
	select {
	case perr := <-l.probe():
		if perr == nil {
			return ok
		}
	case <-done:
		return ok
	}
	// The request failed, so the connection has ended or is ending:
	// client.Wait says how.
	select {
	case <-l.wait():
	case <-done:
		return ok
	}
	return connectionEndErr(l.endErr())
}

// connectionEndErr is the error of Conns whose SSH connection ended with
// err, as client.Wait returned it. It does not wrap err, which may be
// io.EOF: a lost connection must never match io.EOF.
func connectionEndErr(err error) error {
	switch {
	case errors.Is(err, net.ErrClosed):
		return ErrSSHConnectionClosed
	case err == nil || err == io.EOF:
		return ErrSSHConnectionLost
	}
	return fmt.Errorf("%w (%v)", ErrSSHConnectionLost, err)
}
