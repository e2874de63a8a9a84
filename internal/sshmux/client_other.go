//go:build !unix

package sshmux

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Client is a ControlMaster found on a control path. On this system there
// is none: Dial always fails.
type Client struct{}

// Dial returns an error wrapping ErrUnsupported on this system.
func Dial(ctx context.Context, path string) (*Client, error) {
	return nil, fmt.Errorf("%w (control path %s)", ErrUnsupported, path)
}

// Path returns "".
func (c *Client) Path() string { return "" }

// PID returns 0.
func (c *Client) PID() int { return 0 }

// Check returns an error wrapping ErrUnsupported.
func (c *Client) Check(ctx context.Context) (int, error) { return 0, ErrUnsupported }

// OpenStdioFwd returns an error wrapping ErrUnsupported.
func (c *Client) OpenStdioFwd(ctx context.Context, host string, port int) (*Conn, error) {
	return nil, ErrUnsupported
}

// OpenStdioFwdUnix returns an error wrapping ErrUnsupported.
func (c *Client) OpenStdioFwdUnix(ctx context.Context, path string) (*Conn, error) {
	return nil, ErrUnsupported
}

// OpenRemoteFwd returns an error wrapping ErrUnsupported.
func (c *Client) OpenRemoteFwd(ctx context.Context, listenHost string, listenPort int, connectHost string, connectPort int) (int, error) {
	return 0, ErrUnsupported
}

// CloseRemoteFwd returns an error wrapping ErrUnsupported.
func (c *Client) CloseRemoteFwd(ctx context.Context, listenHost string, listenPort int, connectHost string, connectPort int) error {
	return ErrUnsupported
}

// Conn is a stream through a ControlMaster; on this system none can be
// opened, and every method fails.
type Conn struct{}

var _ net.Conn = (*Conn)(nil)

func (c *Conn) Read(b []byte) (int, error)         { return 0, ErrUnsupported }
func (c *Conn) Write(b []byte) (int, error)        { return 0, ErrUnsupported }
func (c *Conn) Close() error                       { return ErrUnsupported }
func (c *Conn) CloseWrite() error                  { return ErrUnsupported }
func (c *Conn) CloseRead() error                   { return ErrUnsupported }
func (c *Conn) LocalAddr() net.Addr                { return nil }
func (c *Conn) RemoteAddr() net.Addr               { return nil }
func (c *Conn) SetDeadline(t time.Time) error      { return ErrUnsupported }
func (c *Conn) SetReadDeadline(t time.Time) error  { return ErrUnsupported }
func (c *Conn) SetWriteDeadline(t time.Time) error { return ErrUnsupported }

// HandOver returns an error wrapping ErrUnsupported.
func (c *Client) HandOver(ctx context.Context, host string, port int, fd int) (*Forward, error) {
	return nil, ErrUnsupported
}

// Forward is a connection handed over to a master; on this system none
// can be.
type Forward struct{}

// Wait returns ErrUnsupported.
func (f *Forward) Wait() error { return ErrUnsupported }

// Close returns ErrUnsupported.
func (f *Forward) Close() error { return ErrUnsupported }
