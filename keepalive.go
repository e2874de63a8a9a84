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
// and Writes return a *net.OpError wrapping ErrServerNotResponding, dials in
// flight fail with it, and new dials fail at once, until the server answers
// again.
//
// This is how a client with no deadlines of its own (lib/pq waiting for a
// cancelled query, say, or a Dial without a context) learns that the network
// is gone. The SSH client is not closed: it belongs to the caller.
//
// An interval of zero or less turns the check off; a timeout of zero or less
// means the interval. The check runs in two goroutines, and a third while a
// request is outstanding, from the first dial until the SSH client is
// closed.
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

// keepalive runs the check until the client's connection ends. A request
// that goes unanswered is not repeated: its reply, whenever it comes, marks
// the server alive again.
func (d *Dialer) keepalive() {
	ended := d.link.wait()
	ticker := time.NewTicker(d.keepaliveInterval)
	defer ticker.Stop()

	var reply <-chan error // the outstanding request's answer; nil when none
	for {
		select {
		case <-ticker.C:
		case <-ended:
			return
		}
		if reply == nil {
			reply = d.link.probe()
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
		case <-ended:
		}
		timeout.Stop()
	}
}

// setDead records whether the server answers. When it stops answering, it
// fails every tracked connection, wakes the dials in flight and calls
// onDead.
func (d *Dialer) setDead(err error) {
	d.mu.Lock()
	wasDead := d.dead != nil
	d.dead = err
	var failed []*Conn
	switch {
	case err != nil && !wasDead:
		close(d.deadCh)
		for c := range d.conns {
			failed = append(failed, c)
		}
		clear(d.conns)
	case err == nil && wasDead:
		d.deadCh = make(chan struct{})
	}
	d.mu.Unlock()
	for _, c := range failed {
		c.fail(err)
	}
	if err != nil && !wasDead && d.onDead != nil {
		d.onDead()
	}
}

// deadSignal returns a channel that is closed when the keepalive check
// fails, or nil when there is no check.
func (d *Dialer) deadSignal() <-chan struct{} {
	if d.keepaliveInterval <= 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadCh
}

// track registers c, to be failed when the keepalive check fails; it
// returns the check's error instead if the server is known not to answer.
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
