package proxysrv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/sshdial/sshdial"
)

// failure is the class of a dial error, which each protocol answers with
// its own code (see the table in the package documentation).
type failure int

const (
	failGeneral failure = iota
	failProhibited
	failNetUnreachable
	failHostUnreachable
	failRefused
	failTimeout
	failShortage
	failBadTarget // an address the dialer refused to send: *net.AddrError
)

// classify sorts a dial error into a failure class.
func classify(err error) failure {
	switch {
	// The SSH connection itself failed: the proxy's own failure, whatever
	// errno it wraps (ErrServerNotResponding wraps ETIMEDOUT,
	// ErrSSHConnectionLost ECONNRESET).
	case errors.Is(err, sshdial.ErrServerNotResponding), errors.Is(err, sshdial.ErrSSHConnectionLost),
		errors.Is(err, sshdial.ErrSSHConnectionClosed), errors.Is(err, sshdial.ErrDialerClosed),
		errors.Is(err, sshdial.ErrNilClient), errors.Is(err, sshdial.ErrNilDialer), errors.Is(err, sshdial.ErrAuthFailed):
		return failGeneral
	case errors.Is(err, sshdial.ErrProhibited):
		return failProhibited
	case errors.Is(err, sshdial.ErrResourceShortage):
		return failShortage
	case errors.Is(err, sshdial.ErrTargetUnreachable):
		// The server's words say more: OpenSSH sends strerror, such as
		// "Connection refused", or getaddrinfo's message for a name.
		var oe *sshdial.OpenError
		if errors.As(err, &oe) {
			m := strings.ToLower(oe.Message)
			switch {
			case strings.Contains(m, "refused"):
				return failRefused
			case strings.Contains(m, "network is unreachable"):
				return failNetUnreachable
			case strings.Contains(m, "timed out"):
				return failTimeout
			}
		}
		return failHostUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return failRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return failNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return failHostUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return failTimeout
	}
	var addrErr *net.AddrError
	if errors.As(err, &addrErr) {
		return failBadTarget
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return failTimeout
		}
		return failHostUnreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	return failGeneral
}

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	socks5Succeeded          = 0x00
	socks5GeneralFailure     = 0x01
	socks5NotAllowed         = 0x02
	socks5NetUnreachable     = 0x03
	socks5HostUnreachable    = 0x04
	socks5Refused            = 0x05
	socks5CommandUnsupported = 0x07
	socks5AddrUnsupported    = 0x08
)

// socks5Reply is the reply code for a dial error.
func socks5Reply(err error) byte {
	switch classify(err) {
	case failProhibited:
		return socks5NotAllowed
	case failNetUnreachable:
		return socks5NetUnreachable
	case failHostUnreachable, failTimeout, failBadTarget:
		return socks5HostUnreachable
	case failRefused:
		return socks5Refused
	}
	return socks5GeneralFailure
}

// httpStatus is the status of a failed CONNECT for a dial error.
func httpStatus(err error) int {
	switch classify(err) {
	case failProhibited:
		return http.StatusForbidden
	case failTimeout:
		return http.StatusGatewayTimeout
	case failShortage:
		return http.StatusServiceUnavailable
	case failBadTarget:
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}
