package sshdial

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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
// the next attempt waits out an exponential backoff with jitter.

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

// backoff spaces out failed attempts; guarded by Dialer.mu.
type backoff struct {
	failures int
	next     time.Time // no attempt starts before
}

const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
)

// failed records a failed attempt and returns the delay before the next.
func (b *backoff) failed() time.Duration {
	b.failures++
	delay := backoffMax
	if b.failures < 20 {
		delay = min(backoffMin<<(b.failures-1), backoffMax)
	}
	// Full jitter on the upper half: many clients that lost the same
	// server do not come back in step.
	delay = delay/2 + rand.N(delay/2+1)
	b.next = time.Now().Add(delay)
	return delay
}

func (b *backoff) succeeded() { *b = backoff{} }

var (
	// ErrDialerClosed is returned by dials through a closed Dialer, and by
	// Reads and Writes of the Conns its Close closed. It wraps
	// net.ErrClosed.
	ErrDialerClosed = fmt.Errorf("sshdial: Dialer is closed: %w", net.ErrClosed)

	// ErrPoolClosed is ErrDialerClosed, under the name it had when Pool
	// was a type of its own.
	ErrPoolClosed = ErrDialerClosed
)

// Pool is a Dialer. NewPool returns one; Connect with WithPool makes the
// same from an OpenSSH destination.
type Pool = Dialer

// NewPool returns a Dialer of at most size SSH connections, each made by
// dial and used with opts, which it owns: its Close closes them. dial is
// called when a connection is needed, with a context that ends when the
// Dialer is closed; it must return a new client each time, and should bound
// its own time (DialSSH with a ClientConfig.Timeout does).
//
// A size below 1 or a nil dial makes every dial fail.
func NewPool(size int, dial func(ctx context.Context) (*ssh.Client, error), opts ...Option) *Dialer {
	d := newDialer(opts)
	d.rejectConnectOptions("NewPool")
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
			return nil, ErrNilClient // no slots: NewPool reported it already
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
	wait := time.Until(d.backoff.next)
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
				delay := d.backoff.failed()
				d.log().Warn("sshdial: connecting to the SSH server failed",
					"err", err, "attempt", d.backoff.failures, "next_attempt_after", delay)
			}
			a.err = err
		} else {
			d.backoff.succeeded()
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
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := client.Wait()
		d.drop(sc)
		if d.ctx.Err() == nil {
			d.log().Warn("sshdial: SSH connection lost", "server", client.RemoteAddr().String(), "err", err)
		}
	}()
	return sc
}

// drop forgets sc, whose SSH connection has ended or stopped answering, so
// that the next dial that needs its slot connects anew.
func (d *Dialer) drop(sc *sshConn) {
	d.mu.Lock()
	if sc.slot != nil && sc.slot.cur == sc {
		sc.slot.cur = nil
	}
	d.mu.Unlock()
}

// release uncounts a Conn of sc.
func (d *Dialer) release(sc *sshConn) {
	d.mu.Lock()
	sc.load--
	d.mu.Unlock()
}

// Close closes every Conn dialed through the Dialer (their blocked and later
// calls fail with ErrDialerClosed), its listeners, and the SSH connections
// it owns; the
// caller's client of a Dialer made by New stays open. It stops any connect
// under way and waits until the Dialer's goroutines are done. Later dials
// fail with ErrDialerClosed. Close may be called more than once.
func (d *Dialer) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	var listeners []*Listener
	for l := range d.listeners {
		listeners = append(listeners, l)
	}
	var conns []*sshConn
	if d.fixed != nil {
		conns = append(conns, d.fixed)
	}
	for _, s := range d.slots {
		if s.cur != nil {
			conns = append(conns, s.cur)
		}
	}
	d.mu.Unlock()
	for _, l := range listeners {
		l.Close()
	}
	d.closeControl()
	if d.cancel != nil {
		d.cancel()
	}
	for _, sc := range conns {
		sc.failConns(ErrDialerClosed)
		if sc.slot != nil {
			sc.client.Close()
		}
	}
	d.wg.Wait()
	d.log().Info("sshdial: Dialer closed")
	return nil
}
