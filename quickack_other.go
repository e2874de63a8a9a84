//go:build !linux

package sshdial

import "net"

// QuickAck returns c: TCP_QUICKACK, and the batched reads built on
// non-blocking reads of the socket, are implemented on Linux only.
func QuickAck(c net.Conn) net.Conn { return c }
