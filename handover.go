package sshdial

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/sshdial/sshdial/internal/handover"
	"github.com/sshdial/sshdial/internal/sshmux"
)

// The command's way to hand an accepted connection to the master
// (internal/handover); not part of the API.
func init() {
	handover.Func = func(d any, ctx context.Context, c net.Conn, network, address string, before func() error) (handover.Forward, bool, error) {
		dd, ok := d.(*Dialer)
		if !ok || dd == nil {
			return nil, false, nil
		}
		h, handled, err := dd.handOver(ctx, c, network, address, before)
		if h == nil {
			return nil, handled, err // an untyped nil Forward
		}
		return h, handled, err
	}
}

// handOver gives c to the master that d dials network!address through
// now, so that the master reads and writes c's socket itself: see
// handover.Func for what the caller may rely on.
func (d *Dialer) handOver(ctx context.Context, c net.Conn, network, address string, before func() error) (*handedConn, bool, error) {
	sc, ok := c.(syscall.Conn)
	if !ok || d.control == nil || d.control.path == "" {
		return nil, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false, nil
	}
	t, err := d.target(ctx, network, address)
	if err != nil {
		return nil, true, err
	}
	var fw *sshmux.Forward
	var used *sshmux.Client
	beforeDone := false
	err, handled := d.viaMaster(ctx, network, t, func(client *sshmux.Client, host string, port int) error {
		used = client
		if before != nil && !beforeDone {
			beforeDone = true
			if err := before(); err != nil {
				return err
			}
		}
		// A duplicate, so that c is not held (its Close would wait)
		// while the master answers.
		dup, err := dupSocket(rc)
		if err != nil {
			return err
		}
		defer closeFD(dup)
		fw, err = client.HandOver(ctx, host, port, dup)
		return err
	})
	if !handled {
		return nil, false, nil
	}
	d.stats.dials.Add(1)
	if err != nil {
		d.stats.dialFailures.Add(1)
		return nil, true, err
	}
	cs := d.control
	h := &handedConn{d: d, client: used, fw: fw, c: c, stop: make(chan struct{})}
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		fw.Close()
		d.stats.dialFailures.Add(1)
		return nil, true, &net.OpError{Op: "dial", Net: t.netName, Addr: t.raddr, Err: ErrDialerClosed}
	}
	cs.handed[h] = struct{}{}
	cs.mu.Unlock()
	return h, true, nil
}

// handedConn is a connection handed over to the master (handover.Forward).
//
// Concurrency: Wait's work runs once, on the first caller's goroutine;
// Close and the Dialer's Close (fail) may come at any time: they close the
// forward and stop, which makes that work end. failErr is guarded by mu.
type handedConn struct {
	d      *Dialer        // its control state (d.control) holds h until Wait ends
	client *sshmux.Client // the master handed to
	fw     *sshmux.Forward
	c      net.Conn // the handed connection; closed by Wait

	stop     chan struct{} // closed by Close and fail: Wait drains no longer
	stopOnce sync.Once

	mu      sync.Mutex
	failErr error // ErrDialerClosed after the Dialer's Close

	once           sync.Once
	sent, received int64 // Wait's results, set in once
	err            error
}

// Wait is handover.Forward's.
func (h *handedConn) Wait() (sent, received int64, err error) {
	h.once.Do(func() {
		cs := h.d.control
		err := h.fw.Wait()
		h.sent, h.received = tcpCounts(h.c)
		h.mu.Lock()
		if h.failErr != nil && errors.Is(err, net.ErrClosed) {
			err = h.failErr
		}
		h.mu.Unlock()
		if errors.Is(err, sshmux.ErrMasterLost) {
			err = &masterLostError{path: cs.path}
			cs.lost(h.d, h.client)
			// What the master wrote before it died is data the
			// peer should have: the reset waits until it is taken.
			drainSendQueue(h.c, h.stop)
		}
		if err != nil {
			if tc, ok := h.c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
		}
		h.c.Close()
		h.err = err
		if h.sent > 0 {
			h.d.stats.addSent(int(h.sent))
		}
		if h.received > 0 {
			h.d.stats.addReceived(int(h.received))
		}
		cs.mu.Lock()
		delete(cs.handed, h)
		cs.mu.Unlock()
	})
	return h.sent, h.received, h.err
}

// Close is handover.Forward's.
func (h *handedConn) Close() error {
	h.stopOnce.Do(func() { close(h.stop) })
	return h.fw.Close()
}

// fail ends the forward for the Dialer's Close: Wait returns err.
func (h *handedConn) fail(err error) {
	h.mu.Lock()
	if h.failErr == nil {
		h.failErr = err
	}
	h.mu.Unlock()
	h.Close()
}

// drainStall is how long drainSendQueue waits for a peer that takes
// nothing.
var drainStall = 5 * time.Second

// drainSendQueue waits until c's peer has acknowledged what is queued for
// it, so that a reset that follows drops nothing the peer could have had.
// It returns early when stop is closed, or when the queue has not shrunk
// for drainStall; at once when the peer has reset the connection, or
// where the system does not tell (sendQueue).
func drainSendQueue(c net.Conn, stop <-chan struct{}) {
	last, since := sendQueue(c), time.Now()
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for last > 0 {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if q := sendQueue(c); q < last {
			last, since = q, time.Now()
		} else if time.Since(since) >= drainStall {
			return
		}
		wait = min(2*wait, 50*time.Millisecond)
		t.Reset(wait)
	}
}
