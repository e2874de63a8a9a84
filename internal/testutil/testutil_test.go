package testutil_test

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeTB records a Fatalf and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	fatal chan string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWithin(t *testing.T) {
	took := testutil.Within(t, 5*time.Second, "a short sleep", func() { time.Sleep(20 * time.Millisecond) })
	if took < 20*time.Millisecond || took > 5*time.Second {
		t.Fatalf("took %v", took)
	}

	fake := &fakeTB{TB: t, fatal: make(chan string, 1)}
	release := make(chan struct{})
	defer close(release)
	go testutil.Within(fake, 10*time.Millisecond, "a blocked call", func() { <-release })
	select {
	case msg := <-fake.fatal:
		if !strings.Contains(msg, "a blocked call did not return within 10ms") {
			t.Fatalf("the failure says %q", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Within did not fail the test")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		l := testutil.EchoServer(t, network)
		c, err := net.Dial(network, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := testutil.RoundTrip(c, "ping"); err != nil {
			t.Fatal(err)
		}
	}

	// A target that answers with other bytes.
	l := testutil.Serve(t, "tcp", func(c net.Conn) {
		io.ReadFull(c, make([]byte, 4))
		io.WriteString(c, "pong")
	})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := testutil.RoundTrip(c, "ping"); err == nil || !strings.Contains(err.Error(), `got "pong"`) {
		t.Fatalf("RoundTrip with a wrong answer returned %v", err)
	}
}

// TestServeEndsHandlers checks that a test's end closes the connections of
// handlers still running, and waits for them.
func TestServeEndsHandlers(t *testing.T) {
	started, returned := make(chan struct{}), make(chan struct{})
	var client net.Conn
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	t.Run("server", func(t *testing.T) {
		l := testutil.Serve(t, "tcp", func(c net.Conn) {
			defer close(returned)
			close(started)
			io.Copy(io.Discard, c) // until the connection is closed
		})
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		client = c // left open: the handler only returns if Serve closes its end
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the handler did not start")
		}
	})
	select {
	case <-returned:
	default:
		t.Fatal("the handler was still running after its test ended")
	}
}
