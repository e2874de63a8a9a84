package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/net/proxy"
)

// A Pool dials through several SSH connections to one server, which it makes
// itself with a dial function and owns.
//
// One SSH connection carries all its channels through a single stream: the
// x/crypto client decrypts everything it receives in one goroutine, and
// OpenSSH's sshd serves each connection in one single-threaded process. So
// one SSH connection moves at most what one core on each side can encrypt,
// and parallel transfers go faster spread over several.
//
// Each connection goes to the SSH connection that has the fewest open ones.
// SSH connections are made when needed: a new one only while every existing
// one carries at least one connection, up to the Pool's size, and again
// after one ends. Sequential use therefore keeps to one SSH connection.
//
// A Pool is safe for concurrent use. Close closes the SSH connections it
// made, which ends every connection dialed through them.
type Pool struct {
	dial     func(ctx context.Context) (*ssh.Client, error)
	opts     []Option
	err      error   // bad arguments to NewPool, reported by every dial
	template *Dialer // with opts and no client: checks and parses dials before any SSH connection

	mu       sync.Mutex
	slots    []*poolSlot
	closed   bool
	watchers sync.WaitGroup
}

var (
	_ proxy.ContextDialer = (*Pool)(nil)
	_ proxy.Dialer        = (*Pool)(nil)
)

// poolSlot is a place for one SSH connection of a Pool.
type poolSlot struct {
	cur   *pooled       // nil while not connected
	ready chan struct{} // non-nil while connecting; closed when that ends
}

// pooled is one SSH connection of a Pool.
type pooled struct {
	slot   *poolSlot
	client *ssh.Client
	dialer *Dialer
	conns  int // open Conns dialed through it
}

// ErrPoolClosed is returned by dials through a closed Pool. It wraps
// net.ErrClosed.
var ErrPoolClosed = fmt.Errorf("sshdial: Pool is closed: %w", net.ErrClosed)

// NewPool returns a Pool of at most size SSH connections, each made by dial
// and used through a Dialer with opts. dial is called when a connection is
// needed, with the context of the DialContext that needs it; it must return
// a new client each time, which the Pool then owns.
//
// A size below 1 or a nil dial makes every dial of the Pool fail.
func NewPool(size int, dial func(ctx context.Context) (*ssh.Client, error), opts ...Option) *Pool {
	p := &Pool{dial: dial, opts: opts, template: New(nil, opts...)}
	switch {
	case size < 1:
		p.err = fmt.Errorf("sshdial: NewPool: size %d, want 1 or more", size)
	case dial == nil:
		p.err = errors.New("sshdial: NewPool: nil dial function")
	}
	for range max(size, 0) {
		p.slots = append(p.slots, &poolSlot{})
	}
	return p
}

// Dial connects to address through one of the Pool's SSH connections. It is
// DialContext with context.Background().
func (p *Pool) Dial(network, address string) (net.Conn, error) {
	return p.DialContext(context.Background(), network, address)
}

// DialContext connects to address through one of the Pool's SSH
// connections, making one first if needed; ctx bounds both. Networks,
// addresses, errors and the returned *Conn are as with Dialer.DialContext. A
// failure to make an SSH connection is returned as the dial's error, unless
// another SSH connection of the Pool is up, which is then used. A dial that
// finds its SSH connection ended is tried once more on another or a new one.
func (p *Pool) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	switch {
	case p == nil:
		return fail(errors.New("sshdial: nil Pool"))
	case p.err != nil:
		return fail(p.err)
	}
	// Bad input fails before any SSH connection is made for it, and the
	// address is parsed once, not again on each try.
	t, err := p.template.target(ctx, network, address)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		pc, err := p.acquire(ctx)
		if err != nil {
			return fail(err)
		}
		var once sync.Once
		release := func(*Conn) { once.Do(func() { p.release(pc) }) }
		c, err := pc.dialer.dialTarget(ctx, network, t, release)
		if err == nil {
			return c, nil
		}
		release(nil)
		// An SSH connection can end, or stop answering, before the Pool
		// has noticed: drop it and try once more, on another one or a new
		// one.
		if !(errors.Is(err, ErrClientClosed) || errors.Is(err, ErrServerNotResponding)) || attempt > 0 {
			return nil, err
		}
		p.drop(pc)
	}
}

// drop forgets pc, whose SSH connection has ended.
func (p *Pool) drop(pc *pooled) {
	p.mu.Lock()
	if pc.slot.cur == pc {
		pc.slot.cur = nil
	}
	p.mu.Unlock()
}

// acquire picks the SSH connection for a new Conn, making one if needed,
// and counts the Conn on it.
func (p *Pool) acquire(ctx context.Context) (*pooled, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		best := p.leastLoaded()
		var free, connecting *poolSlot
		for _, s := range p.slots {
			switch {
			case s.cur == nil && s.ready == nil && free == nil:
				free = s
			case s.ready != nil && connecting == nil:
				connecting = s
			}
		}
		if best != nil && (best.conns == 0 || free == nil) {
			best.conns++
			p.mu.Unlock()
			return best, nil
		}
		if free == nil {
			// Every slot is connecting: wait for one.
			ready := connecting.ready
			p.mu.Unlock()
			select {
			case <-ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			p.mu.Lock()
			continue
		}

		pc, err := p.connect(ctx, free)
		if err == nil {
			return pc, nil // p.mu was released
		}
		p.mu.Lock()
		if best := p.leastLoaded(); best != nil && !p.closed {
			best.conns++
			p.mu.Unlock()
			return best, nil
		}
		p.mu.Unlock()
		return nil, err
	}
}

// leastLoaded returns the connected SSH connection with the fewest Conns,
// or nil; p.mu is held.
func (p *Pool) leastLoaded() *pooled {
	var best *pooled
	for _, s := range p.slots {
		if s.cur != nil && (best == nil || s.cur.conns < best.conns) {
			best = s.cur
		}
	}
	return best
}

// connect makes the SSH connection of slot s, with one Conn counted on it.
// p.mu is held on entry and released on return.
func (p *Pool) connect(ctx context.Context, s *poolSlot) (*pooled, error) {
	ready := make(chan struct{})
	s.ready = ready
	p.mu.Unlock()

	client, err := p.dial(ctx)
	if err == nil && client == nil {
		err = errors.New("sshdial: the Pool's dial function returned no client")
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	s.ready = nil
	close(ready)
	if err != nil {
		return nil, err
	}
	if p.closed {
		client.Close()
		return nil, ErrPoolClosed
	}
	pc := &pooled{slot: s, client: client, dialer: New(client, p.opts...), conns: 1}
	// A connection whose keepalives go unanswered is dropped at once, so
	// that no dial goes to it, and closed, so that its slot connects anew.
	pc.dialer.onDead = func() {
		p.drop(pc)
		client.Close()
	}
	s.cur = pc
	p.watchers.Add(1)
	go p.watch(pc)
	return pc, nil
}

// watch frees the slot when its SSH connection ends, so that the next dial
// that needs it connects again.
func (p *Pool) watch(pc *pooled) {
	defer p.watchers.Done()
	pc.client.Wait()
	p.drop(pc)
}

func (p *Pool) release(pc *pooled) {
	p.mu.Lock()
	pc.conns--
	p.mu.Unlock()
}

// Close closes the Pool's SSH connections, which ends every connection
// dialed through them, and waits until the Pool's goroutines are done.
// Later dials fail with ErrPoolClosed. Close may be called more than once.
func (p *Pool) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.closed = true
	var clients []*ssh.Client
	for _, s := range p.slots {
		if s.cur != nil {
			clients = append(clients, s.cur.client)
		}
	}
	p.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	p.watchers.Wait()
	return nil
}
