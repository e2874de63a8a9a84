// Package sshdial lets ordinary Go networking code reach hosts behind an SSH
// server as if they were local.
//
// A Dialer opens each connection as an SSH channel, the way `ssh -L` does:
// the SSH server connects to the target and relays the bytes. Its
// DialContext has the signature every dial hook takes (net/http's
// Transport, database drivers, gRPC, golang.org/x/net/proxy), and the
// *Conn it returns behaves like a *net.TCPConn:
//
//   - Read and write deadlines work, including a deadline set while a call is
//     blocked, a deadline moved after it fired, and one already past. A
//     timeout is a *net.OpError wrapping os.ErrDeadlineExceeded, so
//     errors.Is, net.Error's Timeout and crypto/tls's Temporary check all
//     hold. io.EOF is returned bare.
//   - CloseWrite sends EOF after all written data while reading goes on;
//     CloseRead stops reading.
//   - Close wakes every blocked Read and Write at once, even when the SSH
//     server has stopped answering.
//   - RemoteAddr is the address that was dialed, so it can be dialed again
//     (pgx does this to send a cancel request), and LocalAddr is the SSH
//     client's local address or the originator given with WithOriginator.
//
// The connection x/crypto/ssh's Client.Dial returns does none of this: its
// Set*Deadline methods fail, its addresses are 0.0.0.0:0 and its Close does
// not wake a Read blocked on a stalled server.
//
// # Names are resolved by the SSH server
//
// The host in a dialed address is sent to the SSH server as it is, and the
// server resolves it. That is how names that exist only behind the server
// (db.internal, a Kubernetes service) work. A port may be a number or a
// service name known to this machine.
//
// # Ownership
//
// A Dialer does not own its *ssh.Client: the caller closes it, and closing it
// ends every connection dialed through it. Each Conn is owned by whoever
// dialed it and must be closed. A context given to DialContext bounds the
// dial only, never the life of the connection.
//
// A Pool owns several SSH connections to one server, made by a function the
// caller gives, and spreads connections over them: one SSH connection is
// limited to what one core on each side encrypts, so parallel transfers go
// faster over several.
//
// # Errors
//
// Dial errors are *net.OpError values with Op "dial" that name the target.
// When the SSH server refuses, the error holds an *OpenError with the
// server's own message, and errors.Is matches it against ErrProhibited,
// ErrTargetUnreachable, ErrUnknownChannelType or ErrResourceShortage.
//
// # How a connection ends
//
// Read returns a bare io.EOF only for a clean end: the SSH server sent EOF
// for the channel and the SSH connection was still up after it. When the
// SSH connection is lost instead (the server dies, the network drops it),
// Read and Write return errors wrapping ErrSSHConnectionLost, which wraps
// syscall.ECONNRESET, so a download cut short never looks complete; after
// the caller closed the SSH client, they wrap ErrSSHConnectionClosed. x/crypto
// reports both ends as io.EOF; telling them apart costs one round trip to
// the server when a channel's data ends.
//
// # A server that stops answering
//
// Deadlines and Close work even when the SSH server stalls. For clients that
// set no deadlines, WithKeepalive makes a Dialer check that the server
// answers and fail its connections, and the dials in flight, with
// ErrServerNotResponding when it does not, as TCP keepalives do for a plain
// connection.
//
// # Testing
//
// Package sshtest runs an SSH server in the test process, as
// net/http/httptest runs an HTTP server, with hooks to refuse targets, stall
// the connection and drop it.
package sshdial
