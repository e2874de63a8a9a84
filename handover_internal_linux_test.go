package sshdial

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// fillSendQueue writes to c until its peer, which reads nothing, takes no
// more, and returns what is left in c's send queue.
func fillSendQueue(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	c.Write(make([]byte, 16<<20))
	c.SetWriteDeadline(time.Time{})
	q := sendQueue(c)
	if q <= 0 {
		t.Fatalf("send queue %d after filling it", q)
	}
	return q
}

// drainSendQueue returns once the peer has taken everything; after
// drainStall when the peer takes nothing; at once when stopped.
func TestDrainSendQueue(t *testing.T) {
	old := drainStall
	t.Cleanup(func() { drainStall = old })

	t.Run("drained", func(t *testing.T) {
		drainStall = 10 * time.Second
		client, accepted := testutil.TCPPair(t)
		fillSendQueue(t, accepted)
		go func() {
			// A slow reader: the queue shrinks by steps.
			b := make([]byte, 64<<10)
			for {
				time.Sleep(10 * time.Millisecond)
				if _, err := client.Read(b); err != nil {
					return
				}
			}
		}()
		drainSendQueue(accepted, make(chan struct{}))
		if q := sendQueue(accepted); q != 0 {
			t.Fatalf("returned with %d bytes queued", q)
		}
	})

	t.Run("stalled", func(t *testing.T) {
		drainStall = 300 * time.Millisecond
		_, accepted := testutil.TCPPair(t)
		q := fillSendQueue(t, accepted)
		start := time.Now()
		drainSendQueue(accepted, make(chan struct{}))
		if took := time.Since(start); took < drainStall || took > 5*time.Second {
			t.Fatalf("took %v with a peer that reads nothing; want about %v", took, drainStall)
		}
		if got := sendQueue(accepted); got != q {
			t.Fatalf("queue %d, was %d", got, q)
		}
	})

	t.Run("stopped", func(t *testing.T) {
		drainStall = 10 * time.Second
		_, accepted := testutil.TCPPair(t)
		fillSendQueue(t, accepted)
		stop := make(chan struct{})
		time.AfterFunc(100*time.Millisecond, func() { close(stop) })
		start := time.Now()
		drainSendQueue(accepted, stop)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("took %v after stop", took)
		}
	})

	t.Run("peer reset", func(t *testing.T) {
		// A peer that resets its end: nothing queued can reach it any
		// more, and SIOCOUTQ keeps counting it.
		drainStall = 10 * time.Second
		client, accepted := testutil.TCPPair(t)
		fillSendQueue(t, accepted)
		client.SetLinger(0)
		client.Close()
		start := time.Now()
		drainSendQueue(accepted, make(chan struct{}))
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("took %v after the peer's reset", took)
		}
	})

	t.Run("not TCP", func(t *testing.T) {
		drainStall = 10 * time.Second
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go io.Copy(io.Discard, b)
		start := time.Now()
		drainSendQueue(a, make(chan struct{}))
		if took := time.Since(start); took > time.Second {
			t.Fatalf("took %v with no queue to read", took)
		}
	})
}
