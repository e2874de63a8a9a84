package sshdial

import (
	"time"
)

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
// request is outstanding, from the first dial until the SSH connection
// ends. A Dialer made by Connect checks by default (see Connect);
// WithKeepalive(0, 0) turns that off.
func WithKeepalive(interval, timeout time.Duration) Option {
	return option(func(d *Dialer) {
		d.keepaliveSet = true
		if interval <= 0 {
			d.keepaliveInterval = 0
			return
		}
		if timeout <= 0 {
			timeout = interval
		}
		d.keepaliveInterval, d.keepaliveTimeout = interval, timeout
		d.keepaliveSet = true
	})
}

// startKeepalive starts the check of sc, once.
func (sc *sshConn) startKeepalive() {
	sc.keepaliveOnce.Do(func() {
		sc.d.wg.Add(1)
		go func() {
			defer sc.d.wg.Done()
			sc.keepalive()
		}()
	})
}

// keepalive runs the check until the client's connection ends. A request
// that goes unanswered is not repeated: its reply, whenever it comes, marks
// the server alive again.
func (sc *sshConn) keepalive() {
	d := sc.d
	ended := sc.link.wait()
	ticker := time.NewTicker(d.keepaliveInterval)
	defer ticker.Stop()

	var reply <-chan error // the outstanding request's answer; nil when none
	for {
		select {
		case <-ticker.C:
		case <-ended:
			return
		case <-d.ctx.Done():
			return
		}
		if reply == nil {
			reply = sc.link.probe()
		}
		timeout := time.NewTimer(d.keepaliveTimeout)
		select {
		case err := <-reply:
			reply = nil
			if err == nil {
				sc.setDead(nil)
			}
		case <-timeout.C:
			d.log().Warn("sshdial: SSH server did not answer a keepalive",
				"server", sc.client.RemoteAddr().String(), "waited", d.keepaliveTimeout)
			sc.setDead(ErrServerNotResponding)
		case <-ended:
		case <-d.ctx.Done():
		}
		timeout.Stop()
	}
}

// setDead records whether the server answers. When it stops answering,
// every open Conn fails and dials in flight are woken; an SSH connection the
// Dialer owns is then dropped and closed, so that the next dial makes a new
// one (the caller's client is left alone).
func (sc *sshConn) setDead(err error) {
	sc.mu.Lock()
	wasDead := sc.dead != nil
	sc.dead = err
	switch {
	case err != nil && !wasDead:
		close(sc.deadCh)
	case err == nil && wasDead:
		sc.deadCh = make(chan struct{})
	}
	sc.mu.Unlock()
	if err == nil || wasDead {
		return
	}
	sc.failConns(err)
	if sc.slot != nil {
		sc.d.drop(sc)
		sc.client.Close()
	}
}

// deadSignal returns a channel that is closed when the keepalive check
// fails, or nil when there is no check.
func (sc *sshConn) deadSignal() <-chan struct{} {
	if sc.d.keepaliveInterval <= 0 {
		return nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.deadCh
}

func (sc *sshConn) deadErr() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.dead
}
