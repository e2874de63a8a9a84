package sshdial

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// The errors of the package. Each sentinel has one meaning, and its name
// says which side failed: the target behind the SSH server, the SSH
// connection to the server, the server's host key or login, or the Dialer
// itself. Match them with errors.Is; the error types below carry details
// (errors.As).
var (
	// ErrNilDialer is returned by the methods of a nil *Dialer and of a
	// Dialer not made by New, NewPool or Connect (a zero Dialer).
	ErrNilDialer = errors.New("sshdial: Dialer not made by New, NewPool or Connect")
	// ErrNilClient is returned by the dials of a Dialer that New was
	// given a nil *ssh.Client.
	ErrNilClient = errors.New("sshdial: New was given a nil *ssh.Client")
	// ErrDialerClosed is returned by dials through a closed Dialer, and by
	// Reads and Writes of the Conns its Close closed. It wraps
	// net.ErrClosed.
	ErrDialerClosed = fmt.Errorf("sshdial: Dialer is closed: %w", net.ErrClosed)

	// ErrSSHConnectionClosed is returned when the SSH connection was
	// closed on this side (by the caller who owns the *ssh.Client, or as
	// the Dialer dropped it). It wraps net.ErrClosed.
	ErrSSHConnectionClosed = fmt.Errorf("sshdial: SSH connection is closed: %w", net.ErrClosed)
	// ErrSSHConnectionLost is matched by the errors of Reads and Writes on
	// a Conn whose SSH connection was lost (the server or the network
	// dropped it, or the server disconnected) rather than ended cleanly.
	// It wraps syscall.ECONNRESET, as a TCP connection's error does when
	// its peer resets it, so code that checks for a reset connection
	// treats it alike.
	ErrSSHConnectionLost = fmt.Errorf("sshdial: the SSH connection was lost: %w", syscall.ECONNRESET)
	// ErrServerNotResponding is the error of connections failed by a
	// Dialer's keepalive check (see WithKeepalive): the SSH server stopped
	// answering. It wraps syscall.ETIMEDOUT, as a TCP connection's error
	// does when its keepalives go unanswered.
	ErrServerNotResponding = fmt.Errorf("sshdial: the SSH server did not answer keepalives: %w", syscall.ETIMEDOUT)

	// ErrTargetUnreachable is matched by an *OpenError when the SSH server
	// could not connect to the target (refused, unreachable, unknown
	// host).
	ErrTargetUnreachable = errors.New("sshdial: the SSH server could not connect to the target")
	// ErrProhibited is matched by an *OpenError when the server refused the
	// channel as administratively prohibited (for example by PermitOpen).
	ErrProhibited = errors.New("sshdial: administratively prohibited")
	// ErrUnknownChannelType is matched by an *OpenError when the server does
	// not support the kind of channel, such as unix sockets.
	ErrUnknownChannelType = errors.New("sshdial: unknown channel type")
	// ErrResourceShortage is matched by an *OpenError when the server is out
	// of resources (for example MaxSessions).
	ErrResourceShortage = errors.New("sshdial: resource shortage")
	// ErrForwardRefused is matched by the error of Listen when the SSH
	// server refused to listen.
	ErrForwardRefused = errors.New("sshdial: the SSH server refused to listen")

	// ErrHostKeyUnknown is matched by the error of a host key check when the
	// server's host key is in no known_hosts file.
	ErrHostKeyUnknown = errors.New("sshdial: host key is unknown")
	// ErrHostKeyChanged is matched by the error of a host key check when
	// known_hosts holds another key for the host (possibly an attack), when
	// the server presented a key or a certificate authority that a @revoked
	// line names, or when a certificate signed by a trusted authority is not
	// valid for the host.
	ErrHostKeyChanged = errors.New("sshdial: host key has changed")
	// ErrNoControlMaster is matched by the dial errors of a Dialer made with
	// WithControl(path, ControlRequired) when no ControlMaster answers on path,
	// and wraps the reason (no socket, nobody listening, a path too long for a
	// Unix socket, or a system without Unix sockets).
	ErrNoControlMaster = errors.New("sshdial: no ControlMaster answers on the control path")

	// ErrAuthFailed is matched by the error of a login that every method
	// failed; the error lists the methods and keys tried (no secrets).
	ErrAuthFailed = errors.New("sshdial: authentication failed")
)

// OpenError is the SSH server's refusal to open a channel (a dial or an
// accepted connection of a remote forward).
type OpenError struct {
	Reason  ssh.RejectionReason
	Message string // the server's own words, such as "Connection refused"
}

func (e *OpenError) Error() string {
	if e.Message == "" {
		return "sshdial: the SSH server refused: " + e.Reason.String()
	}
	return fmt.Sprintf("sshdial: the SSH server refused: %s: %s", e.Reason, e.Message)
}

// Is reports whether target is the sentinel error for e's reason.
func (e *OpenError) Is(target error) bool {
	switch e.Reason {
	case ssh.Prohibited:
		return target == ErrProhibited
	case ssh.ConnectionFailed:
		return target == ErrTargetUnreachable
	case ssh.UnknownChannelType:
		return target == ErrUnknownChannelType
	case ssh.ResourceShortage:
		return target == ErrResourceShortage
	}
	return false
}

// Unwrap returns the refusal as x/crypto reports it, for errors.As with
// *ssh.OpenChannelError.
func (e *OpenError) Unwrap() error {
	return &ssh.OpenChannelError{Reason: e.Reason, Message: e.Message}
}

// HostKeyError is the error of a host key check; errors.Is matches its
// sentinel, ErrHostKeyUnknown or ErrHostKeyChanged.
type HostKeyError struct {
	Host        string   // as known_hosts names it: "host" or "[host]:port"
	KeyType     string   // the key the server offered, e.g. "ssh-ed25519"
	Fingerprint string   // ssh.FingerprintSHA256 of it
	Files       []string // the files checked
	Err         error    // ErrHostKeyUnknown or ErrHostKeyChanged

	// detail says what was found and how to fix it; it is set by the check.
	detail string
}

// Error names the host, the key, the files checked and how to fix the
// problem.
func (e *HostKeyError) Error() string {
	sentinel := "sshdial: host key check failed"
	if e.Err != nil {
		sentinel = e.Err.Error()
	}
	msg := fmt.Sprintf("%s: %s offered %s key %s", sentinel, e.Host, e.KeyType, e.Fingerprint)
	if e.detail != "" {
		return msg + e.detail
	}
	return msg + "; known_hosts files checked: " + filesList(e.Files)
}

// Unwrap returns the sentinel.
func (e *HostKeyError) Unwrap() error { return e.Err }
