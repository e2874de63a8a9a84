package sshdial

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeChannel is an ssh.Channel whose Write waits for release and then
// fails, as when the server closes the channel under a blocked writer.
type fakeChannel struct {
	release chan struct{} // closed to let Write fail
	closed  chan struct{} // closed by Close
}

func (f *fakeChannel) Read([]byte) (int, error) { <-f.closed; return 0, io.EOF }
func (f *fakeChannel) Write([]byte) (int, error) {
	<-f.release
	return 0, io.EOF
}
func (f *fakeChannel) Close() error      { close(f.closed); return nil }
func (f *fakeChannel) CloseWrite() error { return nil }
func (f *fakeChannel) SendRequest(string, bool, []byte) (bool, error) {
	return false, nil
}
func (f *fakeChannel) Stderr() io.ReadWriter { return stderrOf{f} }

type stderrOf struct{ f *fakeChannel }

func (s stderrOf) Read([]byte) (int, error)    { <-s.f.closed; return 0, io.EOF }
func (s stderrOf) Write(p []byte) (int, error) { return len(p), nil }

var _ ssh.Channel = (*fakeChannel)(nil)

// TestReleasedSendBufferIsEmpty is a regression test: a Conn whose channel
// failed with bytes still queued once put that full buffer back into the
// pool, and the next Conn to take it blocked forever in Write.
func TestReleasedSendBufferIsEmpty(t *testing.T) {
	ch := &fakeChannel{release: make(chan struct{}), closed: make(chan struct{})}
	reqs := make(chan *ssh.Request)
	addr := &net.TCPAddr{}
	c := newConn(ch, reqs, "tcp", addr, addr)

	// The first buffer goes to the blocked channel Write, the second fills,
	// the rest waits.
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write(make([]byte, 3*sendBufferSize)); err == nil {
		t.Fatal("Write should time out behind the blocked channel")
	}
	c.mu.Lock()
	queued := c.pending
	c.mu.Unlock()
	if queued == nil || len(*queued) == 0 {
		t.Fatal("expected bytes queued behind the blocked write")
	}

	c.Close()
	close(ch.release) // the channel Write fails; the writer then closes
	<-ch.closed
	close(reqs)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		gone := c.pending == nil
		c.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not release its buffer")
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(*queued); n != 0 {
		t.Fatalf("a buffer went back to the pool holding %d bytes", n)
	}
}
