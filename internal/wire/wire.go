// Package wire holds the SSH messages of port forwarding, shared by the
// Dialer and sshtest: the extra data of the channel opens that carry a
// forwarded connection, and the global requests that start and cancel a
// remote forward. Each type is the payload as ssh.Marshal and ssh.Unmarshal
// read it, after the message's fixed fields.
//
// TCP forwarding is RFC 4254 section 7; unix socket ("streamlocal")
// forwarding is an OpenSSH extension, section 2.4 of openssh-portable's
// PROTOCOL file.
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

// TCPIPForward is the request data of the tcpip-forward and
// cancel-tcpip-forward global requests (RFC 4254 7.1): the address and port
// to listen on, or to stop listening on.
type TCPIPForward struct {
	BindAddr string
	BindPort uint32
}

// TCPIPForwardReply is the data of the success reply to a tcpip-forward
// request whose BindPort was 0: the port the server allocated (RFC 4254
// 7.1).
type TCPIPForwardReply struct {
	Port uint32
}

// ForwardedTCPIP is the extra data of a forwarded-tcpip channel open, which
// the server sends for each connection to a remote forward (RFC 4254 7.2):
// the address and port that were connected to, and where the connection
// came from.
type ForwardedTCPIP struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// StreamLocalForward is the request data of the
// streamlocal-forward@openssh.com and cancel-streamlocal-forward@openssh.com
// global requests (openssh-portable PROTOCOL 2.4): the path of the unix
// socket to listen on, or to stop listening on. The success reply carries
// no data.
type StreamLocalForward struct {
	SocketPath string
}

// ForwardedStreamLocal is the extra data of a
// forwarded-streamlocal@openssh.com channel open, which the server sends
// for each connection to a unix socket remote forward (openssh-portable
// PROTOCOL 2.4). Reserved0 is for future use; OpenSSH sends it empty.
type ForwardedStreamLocal struct {
	SocketPath string
	Reserved0  string
}
