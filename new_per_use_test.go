package sshdial_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/stretchr/testify/assert"
)

// A program may wrap one long-lived *ssh.Client of its own in a Dialer per
// use (New, a dial, Close): each Dialer's goroutines end with its Close,
// and the process does not grow a goroutine per Dialer for as long as the
// client lives.
func TestNewPerUseGrowsNoGoroutines(t *testing.T) {
	_, client := newSSHTest(t)
	echoL := serve(t, "tcp", echo)
	use := func(dial bool) {
		opts := []sshdial.Option{sshdial.WithKeepalive(0, 0)} // Stats' own watch alone
		if dial {
			opts = nil // the default keepalive too
		}
		d := sshdial.New(client, opts...)
		if dial {
			c, err := d.Dial("tcp", echoL.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		d.Stats()
		d.Close()
	}
	for _, dial := range []bool{false, true} {
		use(dial) // whatever the first use starts for good
		base := runtime.NumGoroutine()
		const n = 200
		for i := 0; i < n; i++ {
			use(dial)
		}
		assert.Eventually(t, func() bool { return runtime.NumGoroutine() < base+n/4 }, 2*time.Second, 20*time.Millisecond,
			"dial %v: goroutines left after %d Dialers from New, each closed, over one client (%d before)", dial, n, base)
	}
}
