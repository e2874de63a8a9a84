package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// DialSSH connects to the SSH server at addr over TCP and logs in with
// config, bounded by ctx and by config.Timeout: it reads no config file,
// agent or known_hosts (DialClient does, as ssh would), and suits the dial
// function of NewPool. It is ssh.Dial with a context, two latency and speed
// defaults, and the caller owns the client:
//
//   - TCP_QUICKACK stays armed on the connection (Linux; see QuickAck). OpenSSH's
//     sshd leaves Nagle's algorithm on for forwarding-only sessions, and
//     with the client's delayed ACKs some channel opens wait for a delayed
//     ACK; with quick ACKs they do not.
//   - Reads from the server are batched (Linux; see QuickAck): x/crypto
//     reads through a small buffer, and one system call per batch instead
//     of several per data packet saves CPU on downloads (BENCHMARKS.md has
//     the figures).
//   - When config.Ciphers is empty, AES-GCM is preferred if the CPU has AES
//     instructions and ChaCha20-Poly1305 otherwise (x/crypto's own order
//     always puts AES-GCM first, which is slow in software). config itself
//     is not modified.
func DialSSH(ctx context.Context, addr string, config *ssh.ClientConfig) (*ssh.Client, error) {
	if config == nil {
		return nil, errors.New("sshdial: DialSSH needs an *ssh.ClientConfig")
	}
	var d net.Dialer
	if config.Timeout > 0 {
		d.Timeout = config.Timeout
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return handshake(ctx, QuickAck(conn), addr, withPreferredCiphers(config))
}

// handshake logs in over conn, bounded by ctx and config.Timeout; conn is
// closed on failure. When ctx ends first, the error wraps ctx.Err(), as
// net.Dialer's does.
func handshake(ctx context.Context, conn net.Conn, addr string, config *ssh.ClientConfig) (*ssh.Client, error) {
	if config.Timeout > 0 {
		conn.SetDeadline(time.Now().Add(config.Timeout))
	}
	// ctx ends the handshake by closing conn, not by a deadline, so that
	// its end is told by ctx.Err() and not mistaken for a timeout of the
	// network.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if !stop() || (err != nil && ctx.Err() != nil) {
		// ctx ended, and conn is closed or being closed; or ctx ended and
		// the handshake failed because of it: another AfterFunc of ctx
		// (the agent connection's) closed what the login was using.
		if err == nil {
			c.Close()
		}
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sshdial: connecting to SSH server %s: %w", addr, err)
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// withPreferredCiphers returns config, or a copy with a cipher order fit for
// this CPU when config names none.
func withPreferredCiphers(config *ssh.ClientConfig) *ssh.ClientConfig {
	if len(config.Ciphers) > 0 || hasAESInstructions() {
		return config
	}
	c := *config
	c.Ciphers = []string{
		ssh.CipherChaCha20Poly1305,
		ssh.CipherAES128GCM, ssh.CipherAES256GCM,
		ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR,
	}
	return &c
}

func hasAESInstructions() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESGCM
	case "ppc64le", "ppc64":
		return true // POWER8 and later have AES instructions Go uses
	}
	return false
}
