package sshdial

import (
	"fmt"
	"syscall"
	"time"
)

// ErrServerNotResponding is the error of connections failed by a Dialer's
// keepalive check (see WithKeepalive). It wraps syscall.ETIMEDOUT, as a TCP
// connection's error does when its keepalives go unanswered.
var ErrServerNotResponding = fmt.Errorf("sshdial: the SSH server did not answer keepalives: %w", syscall.ETIMEDOUT)

// WithKeepalive makes the Dialer check every interval that the SSH server
// still answers, by sending a keepalive@openssh.com request (any reply counts:
// OpenSSH answers with a failure). When no reply comes within timeout, every
// open connection dialed through this Dialer fails: blocked and later Reads
// and Writes return a *net.OpError wrapping ErrServerNotResponding, and new
// dials fail at once, until the server answers again.
//
// This is how a client with no deadlines of its own (lib/pq waiting for a
// cancelled query, say) learns that the network is gone. The SSH client is
// not closed: it belongs to the caller.
//
// An interval of zero or less turns the check off; a timeout of zero or less
// means the interval. The check runs in two goroutines, and a third while a
// request is outstanding, until the SSH client is closed.
func WithKeepalive(interval, timeout time.Duration) Option {
	return func(d *Dialer) {
		if interval <= 0 {
			d.keepaliveInterval = 0
			return
		}
		if timeout <= 0 {
			timeout = interval
		}
		d.keepaliveInterval, d.keepaliveTimeout = interval, timeout
	}
}

// keepalive runs the check until the client's connection ends.
func (d *Dialer) keepalive() {
	clientDone := make(chan struct{})
	go func() {
		d.client.Wait()
		close(clientDone)
	}()
	ticker := time.NewTicker(d.keepaliveInterval)
	defer ticker.Stop()

	var reply chan error // the outstanding request's answer; nil when none
	for {
		select {
		case <-ticker.C:
		case <-clientDone:
			return
		}
		if reply == nil {
			reply = make(chan error, 1)
			go func(reply chan<- error) {
				// SendRequest waits as long as the server does: only a
				// reply or the end of the connection returns it.
				_, _, err := d.client.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}(reply)
		}
		timeout := time.NewTimer(d.keepaliveTimeout)
		select {
		case err := <-reply:
			reply = nil
			if err == nil {
				d.setDead(nil)
			}
		case <-timeout.C:
			d.setDead(ErrServerNotResponding)
		case <-clientDone:
		}
		timeout.Stop()
	}
}

// setDead records whether the server answers; when it does not, it fails
// every tracked connection.
func (d *Dialer) setDead(err error) {
	d.mu.Lock()
	d.dead = err
	var failed []*Conn
	if err != nil {
		for c := range d.conns {
			failed = append(failed, c)
		}
		clear(d.conns)
	}
	d.mu.Unlock()
	for _, c := range failed {
		c.fail(err)
	}
}

// track registers c for failing; it reports false if the server is known
// not to answer.
func (d *Dialer) track(c *Conn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead != nil {
		return d.dead
	}
	if d.conns == nil {
		d.conns = make(map[*Conn]struct{})
	}
	d.conns[c] = struct{}{}
	then := c.onClose
	c.onClose = func(c *Conn) {
		d.untrack(c)
		if then != nil {
			then(c)
		}
	}
	return nil
}

func (d *Dialer) untrack(c *Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

func (d *Dialer) deadErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dead
}
