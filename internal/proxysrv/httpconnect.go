package proxysrv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// httpConn serves one HTTP CONNECT request. The request's head may be at
// most 4 times handshakeBuffer long; bytes after it are the tunnel's.
func (s *Server) httpConn(ss *session) {
	log := s.logger().With("client", ss.c.RemoteAddr().String())
	s.startHandshake(ss)
	req, err := http.ReadRequest(ss.br)
	if err != nil {
		log.Debug("proxy: http: request", "err", requestError(err))
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
			return // nothing, or not all, came: no one to answer
		}
		s.httpError(ss, http.StatusBadRequest, "malformed request")
		return
	}
	if req.Method != http.MethodConnect {
		log.Debug("proxy: http: not CONNECT", "method", req.Method)
		s.httpError(ss, http.StatusMethodNotAllowed, "this proxy only serves CONNECT", "Allow: CONNECT")
		return
	}
	if req.ProtoMajor != 1 {
		s.httpError(ss, http.StatusHTTPVersionNotSupported, "HTTP/1 only")
		return
	}
	target, why := connectTarget(req.RequestURI)
	if why != "" {
		log.Debug("proxy: http: bad CONNECT target", "target", withoutUserinfo(req.RequestURI), "why", why)
		s.httpError(ss, http.StatusBadRequest, why)
		return
	}
	endHandshake(ss)
	up, err := s.dial(ss, target)
	if err != nil {
		if ss.ctx.Err() != nil {
			return
		}
		log.Info("proxy: dial failed", "proto", "http-connect", "target", target, "err", err)
		code := httpStatus(err)
		s.httpError(ss, code, "cannot reach "+target)
		return
	}
	if err := s.reply(ss, []byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		log.Debug("proxy: http: reply", "err", err)
		return
	}
	s.tunnel(ss, "http-connect", target, up)
}

// connectTarget checks the request-target of a CONNECT request and returns
// the address to dial, or why the request is refused (with 400).
//
// The target must be authority-form, host ":" port (RFC 9110 9.3.6), with
// no user information. The port is 1-65535 written in canonical decimal:
// digits only, without a sign or a leading zero, so that one target has
// one spelling ("x:0080" would reach x:80 and be shown and counted as
// another target). The host is one of:
//
//   - an IPv6 address in brackets, optionally with a zone written as
//     RFC 6874 says, "[fe80::1%25eth0]"; the zone is unreserved characters
//     (letters, digits, '-', '.', '_', '~'), without percent encoding, and
//     the address with its zone is at most 255 bytes. The address dialed
//     is then "[fe80::1%eth0]:port", whose zone the dialer's far end reads
//     (through sshdial, an interface of the SSH server). A zone written
//     raw, "[fe80::1%eth0]", is refused: in an authority a '%' starts a
//     percent encoding, so that a raw "[fe80::1%25x]" would read as zone x
//     and not 25x (net/http's ReadRequest refuses most raw zones already).
//     Brackets around anything but an IPv6 address ("[127.0.0.1]",
//     "[x.test]") are refused too;
//   - an IPv4 address or a name that validHost accepts.
//
// net/http hands over the target as it came in Request.RequestURI (which
// is what is checked here: Request.Host has its percent encoding decoded,
// any of it, "%25%41" too). curl sends IPv6 addresses in brackets without
// their zone and ports in canonical form; Go's http.Transport sends a
// zone raw, which ReadRequest already refuses, and a URL's port as
// written.
func connectTarget(uri string) (target, why string) {
	const (
		needHostPort = "CONNECT needs host:port, with an IPv6 address in brackets"
		needIPv6     = "brackets must hold an IPv6 address, with a zone written %25zone (RFC 6874)"
		badPort      = "the port must be 1-65535 in decimal, without a sign or leading zeros"
		badZone      = "an IPv6 zone must be letters, digits, '-', '.', '_' or '~', after %25"
	)
	if strings.IndexByte(uri, '@') >= 0 {
		return "", "CONNECT takes no user information (user@)"
	}
	if !strings.HasPrefix(uri, "[") {
		i := strings.LastIndexByte(uri, ':')
		if i < 0 {
			return "", needHostPort
		}
		host, port := uri[:i], uri[i+1:]
		if strings.IndexByte(host, ':') >= 0 || !validHost(host) {
			return "", needHostPort
		}
		if !canonicalPort(port) {
			return "", badPort
		}
		return uri, ""
	}
	literal, port, ok := strings.Cut(uri[1:], "]:")
	if !ok {
		return "", needHostPort
	}
	addr, zone, hasZone := strings.Cut(literal, "%25")
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() || strings.IndexByte(addr, '%') >= 0 {
		return "", needIPv6
	}
	if hasZone {
		if !validZone(zone) {
			return "", badZone
		}
		addr += "%" + zone
		if len(addr) > maxHostLen {
			return "", "host longer than 255 bytes"
		}
	}
	if !canonicalPort(port) {
		return "", badPort
	}
	return net.JoinHostPort(addr, port), ""
}

// canonicalPort reports whether port is 1-65535 in canonical decimal.
func canonicalPort(port string) bool {
	if port == "" || len(port) > 5 || port[0] == '0' {
		return false
	}
	for _, c := range []byte(port) {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(port)
	return err == nil && n <= 65535
}

// validZone reports whether zone is an IPv6 zone of 1 to 255 unreserved
// characters (RFC 3986 2.3).
func validZone(zone string) bool {
	if zone == "" || len(zone) > maxHostLen {
		return false
	}
	for _, c := range []byte(zone) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}

// withoutUserinfo is a request-target as logs show it: user information
// (what a client put before an '@', such as a password) replaced by "…".
func withoutUserinfo(uri string) string {
	if i := strings.LastIndexByte(uri, '@'); i >= 0 {
		return "…" + uri[i:]
	}
	return uri
}

// requestError is the text of an error of http.ReadRequest as logs show
// it: without the request's words that it quotes (a request line that may
// hold a password before an '@', a malformed header line that may be a
// Proxy-Authorization), which are cut from the first quote.
func requestError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the rest quotes the whole target
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		msg = strings.TrimRight(msg[:i], " :(") + " (request text not shown)"
	}
	if ue != nil {
		msg = "request target: " + msg
	}
	return msg
}

// validHost reports whether host is an IP address or could be a DNS name:
// not empty, at most 255 bytes, and no NUL or characters that end up
// elsewhere in a URL.
func validHost(host string) bool {
	if host == "" || badHost(host) != "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, c := range []byte(host) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("/?#@[]\\%", c) >= 0 {
			return false
		}
	}
	return true
}

// httpError answers with code and a one-line text body, and closes.
func (s *Server) httpError(ss *session, code int, text string, headers ...string) {
	body := fmt.Sprintf("%d %s: %s\n", code, http.StatusText(code), text)
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n",
		code, http.StatusText(code), len(body))
	for _, h := range headers {
		head += h + "\r\n"
	}
	s.reply(ss, []byte(head+"\r\n"+body))
	linger(ss)
}

// Lingering after a refusal: a close with unread bytes from the client
// would reset the connection, and the client might lose the answer.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// linger half-closes the client connection after an answer and reads what
// the client still sends, for a while, before the session closes it.
func linger(ss *session) {
	if cw, ok := ss.c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	ss.c.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, ss.c, lingerBytes)
}
