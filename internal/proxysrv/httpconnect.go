package proxysrv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
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
		log.Debug("proxy: http: request", "err", err)
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
	target := req.RequestURI
	host, port, err := net.SplitHostPort(target)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n == 0 || !validHost(host) {
		log.Debug("proxy: http: bad CONNECT target", "target", target)
		s.httpError(ss, http.StatusBadRequest, "CONNECT needs host:port")
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
