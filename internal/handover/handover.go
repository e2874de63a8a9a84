// Package handover lets the sshdial command give a connection it accepted
// to the OpenSSH ControlMaster that a Dialer dials through, so that the
// master reads and writes the connection's socket itself and the data
// never passes through the command (what `ssh -W` does with its standard
// input and output). It is the command's seam into the library, not part
// of the library's API: the library sets Func when it is loaded.
package handover

import (
	"context"
	"net"
)

// Forward is a connection handed over to a master.
//
// Wait and Close may be called concurrently, and each more than once.
type Forward interface {
	// Wait blocks until the forward is over and closes the connection:
	// with a clean close when the master ended the forward (both sides
	// done, or one of them failed), with a reset (SO_LINGER 0) when it
	// ended otherwise, so that the peer never takes a cut-short transfer
	// for a complete one. When the master died, the reset waits until the
	// peer has taken what the master had written to the connection (on
	// Linux, which tells; for at most 5 s without progress, and Close
	// ends the wait). It returns the bytes the master read from the
	// connection (sent) and wrote to it (received), or -1 for both when
	// the system does not tell (they are taken from the kernel's TCP
	// counters, Linux only), and nil for a forward the master ended, an
	// error matching sshdial.ErrSSHConnectionLost when the master died,
	// sshdial.ErrDialerClosed after the Dialer's Close, and net.ErrClosed
	// after Close.
	Wait() (sent, received int64, err error)
	// Close ends the forward at once: the master drops what it has not
	// sent, and the connection is reset.
	Close() error
}

// Func gives c, a stream socket (a *net.TCPConn or *net.UnixConn) that the
// caller accepted and has read nothing from, to the master that d (a
// *sshdial.Dialer) would dial network!address through now, with d's
// rules: the master found at its control path, looked for again when it
// died, and the Dialer's policy when none answers. It reports handled
// false, and leaves c alone, when d would not dial through a master (none
// configured, or none answers and d may use its own SSH connection), or
// when c has no socket to pass. When handled, err is the dial's error, as
// DialContext's (c is then still the caller's to close), or nil: then c
// belongs to the Forward, which closes it.
//
// before, if not nil, is called once the master is found and just before
// c is given to it, from then on the master may write to c at any time:
// a proxy writes its success answer there (as `ssh -D` answers before it
// knows whether the target can be reached). An error from before is
// returned as the dial's, handled. Func may also call before and then
// report handled false (the master died meanwhile): the caller must
// remember that it was called.
var Func func(d any, ctx context.Context, c net.Conn, network, address string, before func() error) (f Forward, handled bool, err error)
