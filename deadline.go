package sshdial

import (
	"sync"
	"time"
)

// deadline is a settable point in time, observed as a channel that is closed
// once the time has passed. Blocked callers select on wait() together with
// their data and done channels, so setting a deadline while a call is blocked
// wakes it, and a deadline that fired can be moved again.
//
// A deadline owns at most one timer, created on first use and re-armed after
// that, so SetDeadline per request (go-redis, mysql) does not allocate.
type deadline struct {
	mu      sync.Mutex
	when    time.Time // zero: no deadline
	timer   *time.Timer
	expired chan struct{} // closed while when has passed; made on first use
}

// set moves the deadline to t; the zero time means no deadline.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.when = t
	if d.expired == nil {
		d.expired = make(chan struct{})
	}
	if d.timer != nil {
		// A callback that already started checks d.when, so a stale one
		// does no harm.
		d.timer.Stop()
	}
	if t.IsZero() {
		d.reopen()
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		if !isClosed(d.expired) {
			close(d.expired)
		}
		return
	}
	d.reopen()
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.fire)
	} else {
		d.timer.Reset(wait)
	}
}

// reopen replaces a closed expired channel; d.mu is held.
func (d *deadline) reopen() {
	if isClosed(d.expired) {
		d.expired = make(chan struct{})
	}
}

// fire runs on the timer.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.when.IsZero() || isClosed(d.expired) {
		return
	}
	// The timer runs on the monotonic clock; a deadline given as wall time
	// may not have passed yet if the wall clock was set back.
	if wait := time.Until(d.when); wait > 0 {
		d.timer.Reset(wait)
		return
	}
	close(d.expired)
}

// wait returns the channel that is closed once the deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired == nil {
		d.expired = make(chan struct{})
	}
	return d.expired
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired != nil && isClosed(d.expired)
}

// stop releases the timer, if any.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
