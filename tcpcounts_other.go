//go:build !linux

package sshdial

import "net"

// tcpCounts returns -1 and -1: only Linux tells (TCP_INFO).
func tcpCounts(c net.Conn) (received, acked int64) { return -1, -1 }

// sendQueue returns -1: only Linux tells (SIOCOUTQ).
func sendQueue(c net.Conn) int { return -1 }
