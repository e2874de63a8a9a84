package sshdial

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
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
	c := newConn(ch, reqs, nil, "tcp", addr, addr)

	// The first buffer goes to the blocked channel Write, the second (a
	// bulk one, since the Write waited) fills, the rest waits.
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write(make([]byte, sendBufferSize+2*bulkSendBufferSize)); err == nil {
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
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pending == nil
	}, 5*time.Second, time.Millisecond, "the writer did not release its buffer")
	if n := len(*queued); n != 0 {
		t.Fatalf("a buffer went back to the pool holding %d bytes", n)
	}
}

// TestBulkSendBuffers: a Conn that streams faster than its channel drains
// takes bulk send buffers, and once its writer is idle it holds no buffer
// and is back to plain ones; request/response traffic never takes a bulk
// buffer.
func TestBulkSendBuffers(t *testing.T) {
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	client := srv.Client()
	t.Cleanup(func() { client.Close() })
	l := testutil.EchoServer(t, "tcp")
	d := New(client)

	bulkSeen := func(c *Conn) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.bulk || (c.pending != nil && cap(*c.pending) == bulkSendBufferSize)
	}

	t.Run("request/response", func(t *testing.T) {
		nc, err := d.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer nc.Close()
		c := nc.(*Conn)
		msg := make([]byte, 64)
		for range 100 {
			_, err := c.Write(msg)
			require.NoError(t, err)
			require.False(t, bulkSeen(c))
			_, err = io.ReadFull(c, msg)
			require.NoError(t, err)
		}
	})

	t.Run("stream", func(t *testing.T) {
		nc, err := d.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer nc.Close()
		c := nc.(*Conn)
		const total = 16 << 20
		echoed := make(chan int64, 1)
		go func() { n, _ := io.Copy(io.Discard, c); echoed <- n }()
		chunk := make([]byte, 256<<10)
		sawBulk := false
		for sent := 0; sent < total; sent += len(chunk) {
			_, err := c.Write(chunk)
			require.NoError(t, err)
			sawBulk = sawBulk || bulkSeen(c)
		}
		require.True(t, sawBulk, "a streaming Conn takes bulk buffers")
		require.NoError(t, c.CloseWrite())
		require.Equal(t, int64(total), <-echoed)
		require.Eventually(t, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.writer != writerBusy && c.pending == nil && !c.bulk
		}, 5*time.Second, time.Millisecond, "an idle writer holds no buffer and leaves bulk mode")
	})
}

// acceptingChannel is an ssh.Channel whose Write takes everything at once.
type acceptingChannel struct{ fakeChannel }

func (a *acceptingChannel) Write(p []byte) (int, error) { return len(p), nil }

// TestWriteThatCommittedAllSucceeds: a Write that committed all of p
// reports no error, whatever the deadline or Close did meanwhile, as
// net.TCPConn does (bufio.Writer takes n == len(p) with an error as a
// failure). The deadline lands at varied points of Writes that must wait
// for the writer; some Writes time out, and those must report n < len(p).
func TestWriteThatCommittedAllSucceeds(t *testing.T) {
	p := make([]byte, 2*sendBufferSize+1)
	stop := time.Now().Add(5 * time.Second)
	full, timedOut := 0, 0
	for i := 0; i < 5000 && time.Now().Before(stop); i++ {
		ch := &acceptingChannel{fakeChannel{release: make(chan struct{}), closed: make(chan struct{})}}
		reqs := make(chan *ssh.Request)
		c := newConn(ch, reqs, nil, "tcp", &net.TCPAddr{}, &net.TCPAddr{})
		c.SetWriteDeadline(time.Now().Add(time.Duration(i%50) * 2 * time.Microsecond))
		if i%2 == 1 {
			go c.Close()
		}
		n, err := c.Write(p)
		switch {
		case n == len(p) && err != nil:
			t.Fatalf("Write %d committed all %d bytes and reported %v", i, n, err)
		case n < len(p) && err == nil:
			t.Fatalf("Write %d returned %d < %d with no error", i, n, len(p))
		case err == nil:
			full++
		default:
			timedOut++
		}
		c.Close()
		close(reqs)
	}
	t.Logf("%d Writes completed, %d failed part way", full, timedOut)
}
