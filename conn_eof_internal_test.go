package sshdial

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
)

// eofChannel is an ssh.Channel whose data ends at once with io.EOF, as a
// channel does when the server sent EOF or the SSH connection was lost.
type eofChannel struct{ closed chan struct{} }

func (f *eofChannel) Read([]byte) (int, error)                       { return 0, io.EOF }
func (f *eofChannel) Write(p []byte) (int, error)                    { return len(p), nil }
func (f *eofChannel) Close() error                                   { close(f.closed); return nil }
func (f *eofChannel) CloseWrite() error                              { return nil }
func (f *eofChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }
func (f *eofChannel) Stderr() io.ReadWriter                          { return eofStderr{} }

type eofStderr struct{}

func (eofStderr) Read([]byte) (int, error)    { return 0, io.EOF }
func (eofStderr) Write(p []byte) (int, error) { return len(p), nil }

// TestFailRacingUnprovenEOFNeverReadsAsEOF: a Conn whose channel ended
// while the round trip that would prove the EOF clean is still out (the
// server stalled) is failed, by the keepalive check or by Close, at the same
// moment as a Read starts. The EOF was never proven, so Read must report
// the failure (ErrServerNotResponding, or net.ErrClosed after Close), never
// a bare io.EOF: code that copies until EOF would take a cut stream as
// complete.
//
// A regression test: readLoop, told by link.classify that the Conn closed
// before the EOF was proven, closed chunks with a nil readErr, and a Read
// that had checked done just before took the closed chunks on its fast path
// as io.EOF. The window is a few instructions, so this runs many rounds; it
// hit a few dozen times in 20000 before the fix.
func TestFailRacingUnprovenEOFNeverReadsAsEOF(t *testing.T) {
	srv := sshtest.NewServer()
	defer srv.Close()
	client, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	l := newLink(client)
	srv.Stall() // the probe stays out
	defer srv.Resume()

	for _, tc := range []struct {
		name string
		end  func(c *Conn)
		want error
	}{
		{"keepalive", func(c *Conn) { c.fail(ErrServerNotResponding) }, ErrServerNotResponding},
		{"close", func(c *Conn) { c.Close() }, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := &net.TCPAddr{}
			const rounds = 20000
			deadline := time.Now().Add(30 * time.Second)
			eofs, i := 0, 0
			for ; i < rounds && time.Now().Before(deadline); i++ {
				ch := &eofChannel{closed: make(chan struct{})}
				reqs := make(chan *ssh.Request)
				close(reqs)
				c := newConn(ch, reqs, l, "tcp", addr, addr)
				c.readerOnce.Do(c.startReader) // readLoop sees EOF and waits for the probe
				var wg sync.WaitGroup
				var rerr error
				start := make(chan struct{})
				wg.Go(func() { <-start; tc.end(c) })
				wg.Go(func() { <-start; _, rerr = c.Read(make([]byte, 1)) })
				close(start)
				wg.Wait()
				if rerr == io.EOF {
					eofs++
				} else if !errors.Is(rerr, tc.want) {
					t.Fatalf("round %d: Read returned %v", i, rerr)
				}
				<-ch.closed
			}
			if eofs > 0 {
				t.Fatalf("%d Reads of %d returned io.EOF for an EOF that was never proven clean", eofs, i)
			}
		})
	}
}
