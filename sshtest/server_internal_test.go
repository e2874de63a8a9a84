package sshtest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// firstWriteConn reports its first Write, and whether it came after closed
// was closed.
type firstWriteConn struct {
	net.Conn
	closed    <-chan struct{}
	wrote     chan struct{}
	once      sync.Once
	lateWrite atomic.Bool
}

func (c *firstWriteConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		c.lateWrite.Store(true)
	default:
	}
	c.once.Do(func() { close(c.wrote) })
	return c.Conn.Write(p)
}

// TestCloseWaitsForServeConn is a regression test: Close promises to wait
// for every goroutine of the server, but a ServeConn that had taken its
// connection into account and was then descheduled, before starting the
// goroutine that serves it, let Close return, and the connection was served
// afterwards. The hook plays the descheduled caller.
func TestCloseWaitsForServeConn(t *testing.T) {
	srv := NewUnstartedServer()
	closed := make(chan struct{})
	tracked := make(chan struct{})
	testHookServeConnTracked = func() {
		close(tracked)
		select {
		case <-closed: // Close returned without waiting for us
		case <-time.After(200 * time.Millisecond): // Close waits for us
		}
	}
	t.Cleanup(func() { testHookServeConnTracked = nil })

	serverEnd, clientEnd := net.Pipe()
	clientEnd.Close() // serving fails at its first write
	conn := &firstWriteConn{Conn: serverEnd, closed: closed, wrote: make(chan struct{})}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		srv.ServeConn(conn)
	}()
	<-tracked
	srv.Close()
	close(closed)
	<-returned

	select {
	case <-conn.wrote: // the SSH version line
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was never served")
	}
	if conn.lateWrite.Load() {
		t.Fatal("the connection was served after Close returned")
	}
}
