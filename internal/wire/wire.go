// Package wire holds the SSH messages that open forwarding channels, shared
// by the Dialer and sshtest.
package wire

// DirectTCPIP is the extra data of a direct-tcpip channel open (RFC 4254
// 7.2): the target, and the originator the connection is said to come from.
type DirectTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// DirectStreamLocal is the extra data of a direct-streamlocal@openssh.com
// channel open (openssh-portable PROTOCOL 2.4).
type DirectStreamLocal struct {
	SocketPath string
	Reserved0  string
	Reserved1  uint32
}
