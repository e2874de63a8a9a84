package backoff

import (
	"math"
	"testing"
	"time"
)

// The delay after the n-th failure in a row lies in [d/2, d], d = Min·2ⁿ⁻¹
// at most Max, for given and default bounds.
func TestBounds(t *testing.T) {
	tests := []struct {
		name     string
		b        Backoff
		min, max time.Duration
	}{
		{"given", Backoff{Min: 10 * time.Millisecond, Max: 300 * time.Millisecond}, 10 * time.Millisecond, 300 * time.Millisecond},
		{"zero value", Backoff{}, DefaultMin, DefaultMax},
		{"Max below Min", Backoff{Min: time.Second, Max: time.Millisecond}, time.Second, time.Second},
		{"huge Max", Backoff{Min: time.Second, Max: math.MaxInt64}, time.Second, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			want := tt.min
			for n := 1; n <= 80; n++ {
				got := b.Fail()
				if got < want/2 || got > want {
					t.Fatalf("failure %d: delay %v, want within [%v, %v]", n, got, want/2, want)
				}
				if b.Failures() != n {
					t.Fatalf("failure %d: Failures() = %d", n, b.Failures())
				}
				if want > tt.max/2 {
					want = tt.max
				} else {
					want *= 2
				}
			}
		})
	}
}

// The delays are spread over [d/2, d], not fixed: many clients do not come
// back in step.
func TestJitter(t *testing.T) {
	const d = time.Second
	lo, hi := d, time.Duration(0)
	for range 1000 {
		b := Backoff{Min: d}
		got := b.Fail()
		lo, hi = min(lo, got), max(hi, got)
	}
	// 1,000 draws from [d/2, d]: the chance that none falls in the lowest
	// or highest tenth is 0.8^1000.
	if lo > 55*d/100 || hi < 95*d/100 {
		t.Errorf("1,000 first delays of a %v backoff lie in [%v, %v]: want them spread over [%v, %v]", d, lo, hi, d/2, d)
	}
}

// Wait says how long until the next try after the last failure's delay.
func TestWait(t *testing.T) {
	var b Backoff
	if w := b.Wait(); w > 0 {
		t.Errorf("Wait before any failure: %v, want 0", w)
	}
	d := b.Fail()
	if w := b.Wait(); w <= 0 || w > d {
		t.Errorf("Wait after a failure of delay %v: %v", d, w)
	}
}

// Reset forgets the failures; Ended resets only after a success that
// lasted, and counts a short one as a failure.
func TestReset(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Hour}
	for range 5 {
		b.Fail()
	}
	b.Reset()
	if b.Failures() != 0 || b.Wait() > 0 {
		t.Fatalf("after Reset: %d failures, wait %v", b.Failures(), b.Wait())
	}
	if d := b.Fail(); d > time.Second {
		t.Errorf("first delay after Reset: %v, want at most Min", d)
	}

	for range 4 {
		b.Fail()
	}
	if d := b.Ended(time.Second, 30*time.Second); d < 16*time.Second || b.Failures() != 6 {
		t.Errorf("a success of 1s (stable 30s) after 5 failures: delay %v, %d failures; want the 6th failure's delay (16s to 32s)", d, b.Failures())
	}
	if d := b.Ended(30*time.Second, 30*time.Second); d != 0 || b.Failures() != 0 || b.Wait() > 0 {
		t.Errorf("a success of 30s (stable 30s): delay %v, %d failures, wait %v; want a reset", d, b.Failures(), b.Wait())
	}
}
