package main

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// pipe copies between a client connection c (read through cr, which may
// hold bytes already buffered from c) and a target connection t, both ways,
// passing each EOF on as a half-close. It returns the bytes copied toward
// the target (sent) and back (received), and the first error other than a
// clean EOF; on such an error both connections are closed at once, the
// client's with a reset when it is TCP, so that a cut-short transfer never
// looks complete. Both connections are closed when pipe returns.
func pipe(c net.Conn, cr io.Reader, t net.Conn) (sent, received int64, err error) {
	var (
		once     sync.Once
		firstErr error
	)
	abort := func(e error) {
		once.Do(func() {
			firstErr = e
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			t.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		n, err := io.Copy(t, cr)
		sent = n
		if err != nil {
			abort(err)
			return
		}
		closeWrite(t)
	})
	n, err2 := io.Copy(c, t)
	received = n
	if err2 != nil {
		abort(err2)
	} else {
		closeWrite(c)
	}
	wg.Wait()
	c.Close()
	t.Close()
	once.Do(func() {})
	return sent, received, firstErr
}

// closeWrite half-closes c when it can.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// countedConn counts the bytes written to and read from a target
// connection into its forward's totals, as they go.
type countedConn struct {
	net.Conn
	sent, received *atomic.Int64
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.received.Add(int64(n))
	return n, err
}

// WriteTo lets io.Copy hand the connection's data straight to w when the
// connection can (a *sshdial.Conn does), counting it as it goes.
func (c *countedConn) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w, n: c.received}
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(cw)
	}
	return io.Copy(cw, struct{ io.Reader }{c.Conn})
}

// countingWriter counts the bytes written through it into n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return nil
}
