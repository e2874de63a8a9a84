package sshdial

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// The SSH connections a Dialer owns (Connect, NewPool): up to a number of
// slots, each empty, connecting, or holding one SSH connection.
//
// One SSH connection carries all its channels through a single stream: the
// x/crypto client decrypts everything it receives in one goroutine, and
// OpenSSH's sshd serves each connection in one single-threaded process. So
// one SSH connection moves at most what one core on each side can encrypt,
// and parallel transfers go faster spread over several.
//
// Each dial goes to the SSH connection with the fewest Conns. A new one is
// made only while every existing one carries at least one Conn, up to the
// number of slots, and again after one is lost; sequential use therefore
// keeps to one. Making one is an attempt shared by every dial that waits
// for it, each waiting no longer than its own context; after a failure,
// the next attempt waits out an exponential backoff with jitter. An SSH
// connection lost before it was up for backoffStable counts as a failure
// too, and only one that stayed up that long resets the backoff: a server
// that drops every connection right after the login is not logged in to
// more than a few times a second, whatever the pattern.
//
// Concurrency contract. The slots, the backoff and closed are guarded by
// Dialer.mu, which is never held across a network call (lock order:
// Dialer.mu, then an sshConn's mu). These goroutines run, each counted in
// Dialer.wg before it starts, so that Close, after cancelling d.ctx and
// closing the SSH connections, waits for them:
//   - an attempt (startAttempt): waits out the backoff, makes the SSH
//     connection with d.ctx (which Close cancels), then takes mu to put it
//     in its slot, or to record the failure, and closes attempt.done, which
//     every dial waiting for it selects on beside its own context;
//   - a watcher per SSH connection (install): waits for the connection to
//     end, then takes mu to empty the slot and feed the backoff (its
//     Conns learn of the end from their own link, link.go, not from it);
//   - with jump hosts, one per SSH connection (connectHops): closes the
//     jump hosts' connections once the destination's has ended.

// slot is a place for one owned SSH connection; guarded by Dialer.mu.
type slot struct {
	cur     *sshConn // nil while not connected
	attempt *attempt // non-nil while connecting
}

// attempt is one try at making an SSH connection.
type attempt struct {
	done chan struct{} // closed when it ends
	err  error         // set before done is closed
}

// backoffStable is how long an SSH connection must stay up for its loss to
// reset the backoff (a variable for tests).
var backoffStable = 30 * time.Second

// NewPool returns a Dialer of at most size SSH connections, each made by
// dial and used with opts, which it owns: its Close closes them. dial is
// called when a connection is needed, with a context that ends when the
// Dialer is closed; it must return a new client each time, and should bound
// its own time (DialSSH with a ClientConfig.Timeout does).
//
// A size below 1 or a nil dial makes every dial fail.
func NewPool(size int, dial func(ctx context.Context) (*ssh.Client, error), opts ...Option) *Dialer {
	d := newDialer(opts)
	switch {
	case size < 1:
		d.optionErr = fmt.Errorf("sshdial: NewPool: size %d, want 1 or more", size)
	case dial == nil:
		d.optionErr = errors.New("sshdial: NewPool: nil dial function")
	}
	d.dialSSH = dial
	d.slots = newSlots(size)
	return d
}

func newSlots(n int) []*slot {
	slots := make([]*slot, max(n, 0))
	for i := range slots {
		slots[i] = &slot{}
	}
	return slots
}

// acquire picks the SSH connection for a new Conn, making one if needed
// and connect allows (else it fails with errNoSSHConn), and counts the
// Conn on it.
func (d *Dialer) acquire(ctx context.Context, connect bool) (*sshConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fixed != nil {
		if d.closed {
			return nil, ErrDialerClosed
		}
		d.fixed.load++
		return d.fixed, nil
	}
	if d.dialSSH == nil {
		if d.ctx == nil {
			return nil, ErrNilDialer // a zero Dialer
		}
		return nil, ErrNilClient
	}
	waited := false
	for {
		if d.closed {
			return nil, ErrDialerClosed
		}
		best := d.leastLoaded()
		var free, connecting *slot
		for _, s := range d.slots {
			switch {
			case s.cur == nil && s.attempt == nil && free == nil:
				free = s
			case s.attempt != nil && connecting == nil:
				connecting = s
			}
		}
		if best != nil && (best.load == 0 || free == nil || waited || !connect) {
			best.load++
			return best, nil
		}
		if !connect {
			return nil, errNoSSHConn
		}
		// Here no SSH connection is up, or all carry Conns and a slot is
		// free for one more.
		var a *attempt
		switch {
		case best == nil && connecting != nil:
			a = connecting.attempt // one attempt for everybody
		case free != nil:
			a = d.startAttempt(free)
		default:
			return nil, errNoSSHConn // no slots: NewPool reported it already
		}
		d.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			d.mu.Lock()
			return nil, ctx.Err()
		}
		d.mu.Lock()
		waited = true
		// A dial waits for one attempt only: when it failed and no SSH
		// connection is up, its error is the dial's.
		if a.err != nil && d.leastLoaded() == nil && !d.closed {
			return nil, a.err
		}
	}
}

// leastLoaded returns the connected SSH connection with the fewest Conns,
// or nil; d.mu is held.
func (d *Dialer) leastLoaded() *sshConn {
	var best *sshConn
	for _, s := range d.slots {
		if s.cur != nil && (best == nil || s.cur.load < best.load) {
			best = s.cur
		}
	}
	return best
}

// startAttempt starts making the SSH connection of s, after the backoff;
// d.mu is held.
func (d *Dialer) startAttempt(s *slot) *attempt {
	a := &attempt{done: make(chan struct{})}
	s.attempt = a
	wait := d.backoff.Wait()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if d.stats.connects.Load() > 0 || wait > 0 {
			d.log().Info("sshdial: reconnecting to the SSH server", "delay", max(wait, 0))
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-d.ctx.Done():
			}
			t.Stop()
		}
		var client *ssh.Client
		err := d.ctx.Err()
		if err == nil {
			client, err = d.dialSSH(d.ctx)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		s.attempt = nil
		switch {
		case err == nil && client == nil:
			err = errors.New("sshdial: the dial function returned no SSH client")
		case err == nil && d.closed:
			client.Close()
			err = ErrDialerClosed
		}
		if err != nil {
			if d.closed {
				err = ErrDialerClosed
			} else {
				delay := d.backoff.Fail()
				d.log().Warn("sshdial: connecting to the SSH server failed",
					"err", err, "attempt", d.backoff.Failures(), "next_attempt_after", delay)
			}
			a.err = err
		} else {
			// The backoff is reset once the connection has proved stable
			// (see install), not by the login alone.
			d.install(s, client)
		}
		close(a.done)
	}()
	return a
}

// install puts a new SSH connection in s and watches it; d.mu is held.
func (d *Dialer) install(s *slot, client *ssh.Client) *sshConn {
	sc := d.newSSHConn(client, s)
	s.cur = sc
	if d.stats.connects.Add(1) > 1 {
		d.stats.reconnects.Add(1)
	}
	up := time.Now()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := client.Wait()
		d.mu.Lock()
		d.dropLocked(sc)
		lived := time.Since(up)
		var delay time.Duration
		if !d.closed {
			delay = d.backoff.Ended(lived, backoffStable)
		}
		d.mu.Unlock()
		if d.ctx.Err() == nil {
			attrs := []any{"server", client.RemoteAddr().String(), "err", err, "up_for", lived.Round(time.Millisecond)}
			if delay > 0 {
				attrs = append(attrs, "next_attempt_after", delay)
			}
			d.log().Warn("sshdial: SSH connection lost", attrs...)
		}
	}()
	return sc
}

// drop forgets sc, whose SSH connection has ended or stopped answering, so
// that the next dial that needs its slot connects anew.
func (d *Dialer) drop(sc *sshConn) {
	d.mu.Lock()
	d.dropLocked(sc)
	d.mu.Unlock()
}

// dropLocked is drop with d.mu held.
func (d *Dialer) dropLocked(sc *sshConn) {
	if sc.slot != nil && sc.slot.cur == sc {
		sc.slot.cur = nil
	}
}

// release uncounts a Conn of sc.
func (d *Dialer) release(sc *sshConn) {
	d.mu.Lock()
	sc.load--
	d.mu.Unlock()
}
