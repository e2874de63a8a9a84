// Package sshdial lets ordinary Go networking code reach hosts behind an SSH
// server as if they were local.
//
// A Dialer opens each connection as an SSH channel, the way `ssh -L` does:
// the SSH server connects to the target and relays the bytes. Its
// DialContext has the signature every dial hook takes (net/http's
// Transport, database drivers, gRPC, golang.org/x/net/proxy), and the
// connections it returns behave like TCP connections.
//
// # Connect: as ssh would
//
// Most programs start with Connect, which connects to a destination as
// `ssh -N destination` would: it reads ~/.ssh/config and
// /etc/ssh/ssh_config (Host and Match blocks, Include, ProxyJump,
// ProxyCommand, IdentityFile, ControlPath, ...), asks ssh-agent and the
// identity files for keys, and checks the server's host key against
// known_hosts, refusing an unknown or changed key unless
// StrictHostKeyChecking says otherwise:
//
//	d, err := sshdial.Connect(ctx, "bastion") // a Host of ~/.ssh/config, or user@host:port
//	if err != nil { ... }
//	defer d.Close()
//	client := &http.Client{Transport: d.HTTPTransport()}
//
// The Dialer Connect returns owns its SSH connection: it sends keepalives
// (ServerAliveInterval, 15 seconds by default), makes the connection again
// after it is lost, and closes it on Close. With a ControlPath where an
// OpenSSH master (`ssh -M`) answers, its dials go through that master
// instead, with no login of their own. ConnectOptions (WithJump,
// WithIdentityFile, WithPool, WithUser, ...) change what the config files
// say; ResolveConfig shows what Connect would use, as `ssh -G` does.
//
// DialClient makes the SSH connection the same way and returns the
// *ssh.Client itself, for sessions, SFTP, or anything else a Dialer does
// not do.
//
// # New: with an SSH client of your own
//
// New makes a Dialer over an *ssh.Client the caller made and keeps: the
// Dialer never closes it, and closing it ends every connection dialed
// through it. NewPool spreads the connections over several SSH connections
// made by a function the caller gives, which it owns: one SSH connection is
// limited to what one core on each side encrypts, so parallel transfers go
// faster over several. New and NewPool take Options (WithLogger,
// WithKeepalive, WithOriginator, WithControlPath), which Connect takes
// too; a ConnectOption given to them does not compile.
//
// # Listen: the other direction
//
// Dialer.Listen asks the SSH server to listen, as `ssh -R` does, and
// returns a net.Listener whose Accept returns the connections made to the
// server's port (or Unix socket). A Dialer made by Connect asks again
// after a reconnect.
//
// # The Conn contract
//
// Dialed and accepted connections are *Conn values, which behave like a
// *net.TCPConn:
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
// Each Conn is owned by whoever dialed or accepted it and must be closed;
// a Dialer's Close closes all of them. A context given to DialContext bounds
// the dial only, never the life of the connection.
//
// # How a connection ends
//
// Read returns a bare io.EOF only for a clean end: the SSH server sent EOF
// for the channel and the SSH connection was still up after it. When the
// SSH connection is lost instead (the server dies, the network drops it),
// Read and Write return errors wrapping ErrSSHConnectionLost, which wraps
// syscall.ECONNRESET, so a download cut short never looks complete; after
// the caller closed the SSH client, they wrap ErrSSHConnectionClosed, and
// after the Dialer's Close, ErrDialerClosed. x/crypto reports all of these
// as io.EOF; telling them apart costs one round trip to the server when a
// channel's data ends.
//
// Deadlines and Close work even when the SSH server stalls. For clients
// that set no deadlines, keepalives (on by default with Connect,
// WithKeepalive otherwise) fail the connections, and the dials in flight,
// with ErrServerNotResponding when the server stops answering, as TCP
// keepalives do for a plain connection.
//
// # Names are resolved by the SSH server
//
// The host in a dialed address is sent to the SSH server as it is, and the
// server resolves it. That is how names that exist only behind the server
// (db.internal, a Kubernetes service) work. A port may be a number or a
// service name known to this machine.
//
// # Errors
//
// The sentinel errors (the block that starts with ErrNilDialer) and the
// error types OpenError and HostKeyError are listed together; each
// sentinel has one meaning and says which side failed:
// the target (ErrTargetUnreachable), the SSH connection
// (ErrSSHConnectionLost), the server's policy (ErrProhibited), the host
// key (ErrHostKeyUnknown, ErrHostKeyChanged) or the login (ErrAuthFailed).
// Dial errors are *net.OpError values with Op "dial" that name the
// target; when the SSH server refuses, the error holds an *OpenError with
// the server's own message. No error or log line holds a secret.
//
// # Testing
//
// Package sshtest runs an SSH server in the test process, as
// net/http/httptest runs an HTTP server, with hooks to refuse targets, stall
// the connection and drop it.
package sshdial
