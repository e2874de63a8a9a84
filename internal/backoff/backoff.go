// Package backoff is the one retry policy of sshdial and its command: every
// loop that tries something again after a failure (making an SSH
// connection, a remote forward after a reconnect, a forward that failed at
// start, an accept that failed) spaces its tries with a Backoff.
//
// The policy: the delay after the n-th failure in a row is Min·2ⁿ⁻¹, at
// most Max, with full jitter on its upper half (a delay d is drawn evenly
// from [d/2, d]), so that many clients that lost the same server do not
// come back in step. A success resets it; where a success may be short-
// lived (an SSH connection that the server drops right after the login),
// Ended resets it only when the success lasted long enough, and counts it
// as a failure otherwise.
package backoff

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Defaults of a Backoff whose Min or Max is zero.
const (
	DefaultMin = 250 * time.Millisecond
	DefaultMax = 30 * time.Second
)

// Backoff counts failures in a row and says how long to wait after each.
// The zero value is ready to use, with DefaultMin and DefaultMax. A Backoff
// is not safe for concurrent use: its owner guards it.
type Backoff struct {
	Min time.Duration // the delay after the first failure; DefaultMin when zero
	Max time.Duration // the longest delay; DefaultMax when zero

	failures int
	next     time.Time // no try should start before
}

// Fail records a failure and returns the delay before the next try: in
// [d/2, d] where d is Min doubled once per earlier failure in a row, at
// most Max.
func (b *Backoff) Fail() time.Duration {
	lo, hi := b.bounds()
	b.failures++
	d := lo
	for i := 1; i < b.failures && d < hi; i++ {
		if d > hi/2 { // no overflow, whatever Max
			d = hi
			break
		}
		d *= 2
	}
	d = d/2 + rand.N(d/2+1)
	b.next = time.Now().Add(d)
	return d
}

// Reset forgets the failures: the next try may start at once, and the
// delay after its failure is Min again.
func (b *Backoff) Reset() {
	b.failures = 0
	b.next = time.Time{}
}

// Ended records the end of a success that lasted upFor: one that lasted at
// least stable resets the backoff and returns 0; a shorter one counts as a
// failure, and Ended returns the delay before the next try, as Fail does.
func (b *Backoff) Ended(upFor, stable time.Duration) time.Duration {
	if upFor >= stable {
		b.Reset()
		return 0
	}
	return b.Fail()
}

// Failures returns the number of failures since the last reset.
func (b *Backoff) Failures() int { return b.failures }

// Wait returns how long until the next try may start after the last
// failure's delay; zero or less when it may start now.
func (b *Backoff) Wait() time.Duration {
	if b.next.IsZero() {
		return 0
	}
	return time.Until(b.next)
}

func (b *Backoff) bounds() (lo, hi time.Duration) {
	lo, hi = b.Min, b.Max
	if lo <= 0 {
		lo = DefaultMin
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	return lo, max(lo, hi)
}

// DefaultRefusedPatience is RefusedPatience unless a test changes it.
const DefaultRefusedPatience = 3 * time.Minute

var refusedPatience atomic.Int64 // nanoseconds; 0 means DefaultRefusedPatience

// RefusedPatience is how long a remote forward that the SSH server refuses
// after a reconnect is asked for again, with backoff, before it is given
// up: the port is often still held by the server's session of the lost
// connection, until the server notices it is gone (its ClientAlive checks,
// or TCP keepalives). Safe for concurrent use.
func RefusedPatience() time.Duration {
	if d := time.Duration(refusedPatience.Load()); d > 0 {
		return d
	}
	return DefaultRefusedPatience
}

// SetRefusedPatience sets RefusedPatience (zero: the default) and returns
// the value before; for tests.
func SetRefusedPatience(d time.Duration) time.Duration {
	return time.Duration(refusedPatience.Swap(int64(d)))
}
