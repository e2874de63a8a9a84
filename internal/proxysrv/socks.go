package proxysrv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// SOCKS protocol bytes.
const (
	socks4Version = 0x04
	socks5Version = 0x05

	socksConnect = 0x01 // CONNECT, in both versions

	socks5NoAuth       = 0x00
	socks5NoAcceptable = 0xFF
	socks5IPv4         = 0x01
	socks5Domain       = 0x03
	socks5IPv6         = 0x04

	socks4Granted  = 90
	socks4Rejected = 91

	// maxSOCKS4Field bounds SOCKS4's NUL-terminated user ID and SOCKS4a's
	// host name.
	maxSOCKS4Field = 255
)

// errRefused ends a handshake the server answered with a refusal.
type errRefused struct{ why string }

func (e errRefused) Error() string { return "proxysrv: refused: " + e.why }

// socksConn serves one SOCKS4, 4a or 5 connection.
func (s *Server) socksConn(ss *session) {
	log := s.logger().With("client", ss.c.RemoteAddr().String())
	s.startHandshake(ss)
	ver, err := ss.br.ReadByte()
	if err != nil {
		log.Debug("proxy: socks: handshake", "err", err)
		return
	}
	var target string
	switch ver {
	case socks5Version:
		target, err = s.socks5Request(ss)
	case socks4Version:
		target, err = s.socks4Request(ss)
	default:
		err = fmt.Errorf("not SOCKS: first byte %#02x", ver)
	}
	if err != nil {
		log.Debug("proxy: socks: handshake", "version", ver, "err", err)
		var refused errRefused
		if errors.As(err, &refused) {
			linger(ss)
		}
		return
	}
	endHandshake(ss)
	proto := "socks5"
	if ver == socks4Version {
		proto = "socks4"
	}
	success := func(bound net.Addr) []byte {
		if ver == socks5Version {
			return socks5Answer(socks5Succeeded, bound)
		}
		return socks4Answer(socks4Granted)
	}
	answered := false // the success answer went out before the target was reached
	if s.HandOver != nil && ss.br.Buffered() == 0 {
		handled, err := s.handOver(ss, proto, target, func() error {
			answered = true
			return s.reply(ss, success(nil))
		})
		switch {
		case handled && err == nil:
			return
		case handled:
			if ss.ctx.Err() != nil {
				return
			}
			log.Info("proxy: dial failed", "proto", proto, "target", target, "err", err)
			if answered {
				reset(ss)
				return
			}
			s.socksFailed(ss, ver, err)
			return
		}
	}
	up, err := s.dial(ss, target)
	if err != nil {
		if ss.ctx.Err() != nil {
			return // closed by the proxy: no one to answer
		}
		log.Info("proxy: dial failed", "proto", proto, "target", target, "err", err)
		if answered {
			reset(ss)
			return
		}
		s.socksFailed(ss, ver, err)
		return
	}
	if !answered {
		if err := s.reply(ss, success(up.LocalAddr())); err != nil {
			log.Debug("proxy: socks: reply", "err", err)
			return
		}
	}
	s.tunnel(ss, proto, target, up)
}

// socksFailed answers a request whose dial failed.
func (s *Server) socksFailed(ss *session, ver byte, err error) {
	if ver == socks5Version {
		s.reply(ss, socks5Answer(socks5Reply(err), nil))
	} else {
		s.reply(ss, socks4Answer(socks4Rejected))
	}
	linger(ss)
}

// socks5Request negotiates the method and reads the request, after the
// version byte. It answers refusals itself.
func (s *Server) socks5Request(ss *session) (string, error) {
	br := ss.br
	n, err := br.ReadByte()
	if err != nil {
		return "", err
	}
	methods := make([]byte, n)
	if _, err := io.ReadFull(br, methods); err != nil {
		return "", err
	}
	ok := false
	for _, m := range methods {
		ok = ok || m == socks5NoAuth
	}
	if !ok {
		s.reply(ss, []byte{socks5Version, socks5NoAcceptable})
		return "", errRefused{fmt.Sprintf("no acceptable method in %x", methods)}
	}
	if err := s.reply(ss, []byte{socks5Version, socks5NoAuth}); err != nil {
		return "", err
	}
	var head [4]byte // VER CMD RSV ATYP
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return "", err
	}
	refuse := func(code byte, why string) (string, error) {
		s.reply(ss, socks5Answer(code, nil))
		return "", errRefused{why}
	}
	if head[0] != socks5Version {
		return refuse(socks5GeneralFailure, fmt.Sprintf("request version %#02x", head[0]))
	}
	var host string
	switch atyp := head[3]; atyp {
	case socks5IPv4, socks5IPv6:
		b := make([]byte, 4)
		if atyp == socks5IPv6 {
			b = make([]byte, 16)
		}
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		ip, _ := netip.AddrFromSlice(b)
		host = ip.String()
	case socks5Domain:
		k, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		b := make([]byte, k)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		host = string(b)
	default:
		return refuse(socks5AddrUnsupported, fmt.Sprintf("address type %#02x", atyp))
	}
	port, err := readPort(br)
	if err != nil {
		return "", err
	}
	if cmd := head[1]; cmd != socksConnect {
		return refuse(socks5CommandUnsupported, fmt.Sprintf("command %#02x", cmd))
	}
	if port == 0 {
		return refuse(socks5GeneralFailure, errPortZero)
	}
	if host == "" {
		return refuse(socks5GeneralFailure, "empty host name")
	}
	if why := badHost(host); why != "" {
		return refuse(socks5HostUnreachable, why)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

// socks4Request reads a SOCKS4 or 4a request, after the version byte. It
// answers refusals itself.
func (s *Server) socks4Request(ss *session) (string, error) {
	br := ss.br
	var head [7]byte // CD DSTPORT DSTIP
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return "", err
	}
	refuse := func(why string) (string, error) {
		s.reply(ss, socks4Answer(socks4Rejected))
		return "", errRefused{why}
	}
	if _, err := readCString(br); err != nil { // USERID, ignored
		if err == errFieldTooLong {
			return refuse("user ID too long")
		}
		return "", err
	}
	port := binary.BigEndian.Uint16(head[1:3])
	ip := netip.AddrFrom4([4]byte(head[3:7]))
	host := ip.String()
	if head[3] == 0 && head[4] == 0 && head[5] == 0 && head[6] != 0 { // SOCKS4a: a name follows
		name, err := readCString(br)
		if err == errFieldTooLong {
			return refuse("host name too long")
		}
		if err != nil {
			return "", err
		}
		host = name
	}
	if head[0] != socksConnect {
		return refuse(fmt.Sprintf("command %#02x", head[0]))
	}
	if port == 0 {
		return refuse(errPortZero)
	}
	if host == "" {
		return refuse("empty host name")
	}
	if why := badHost(host); why != "" {
		return refuse(why)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

// errPortZero is why a request for port 0 is refused.
//
// Port 0 names no TCP service (RFC 6335 reserves it), so a request for it
// is malformed, and it is refused before anything is dialed or handed
// over. OpenSSH's ssh -D does not check it (channel_decode_socks4 and
// channel_decode_socks5 pass any port on): it answers success at once and
// sshd then tries to connect to port 0, which fails (Linux refuses it
// with ECONNREFUSED), so the client sees the connection close. RFC 1928 has no code
// for a malformed request; SOCKS5 answers 0x01 (general failure), as for
// the other malformed requests it can parse (a wrong request version, an
// empty name), rather than 0x05 (refused) or 0x04 (host unreachable),
// which would say that a target was tried, or 0x02, which would blame a
// rule set. SOCKS4 has one refusal code, 91.
const errPortZero = "destination port 0"

func readPort(br *bufio.Reader) (uint16, error) {
	var b [2]byte
	if _, err := io.ReadFull(br, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b[:]), nil
}

var errFieldTooLong = errors.New("proxysrv: SOCKS4 field too long")

// maxHostLen is the longest host name DNS allows.
const maxHostLen = 255

// badHost says why host cannot be dialed, or "". A NUL byte in a name
// would make OpenSSH's sshd drop the whole SSH connection (sshdial's
// Dialer refuses it too, but a DialFunc need not be sshdial's), and a name
// longer than DNS allows names nothing. Nor can a name with '[' or ']' be
// passed on: in the host:port given to Dial it would name another host
// ("[a]:80" is a:80) or none (net.SplitHostPort fails). Other ASCII
// control characters (C0 and DEL) are in no host name or address either;
// passed on, they would reach whatever shows the target (logs, OnTunnel,
// the dialer's errors), where a newline or an escape sequence shown raw
// could forge a line or drive a terminal.
func badHost(host string) string {
	switch {
	case strings.IndexByte(host, 0) >= 0:
		return "NUL byte in the host name"
	case len(host) > maxHostLen:
		return "host name longer than 255 bytes"
	case strings.ContainsAny(host, "[]"):
		return "bracket in the host name"
	case strings.IndexFunc(host, isControl) >= 0:
		return "control character in the host name"
	}
	return ""
}

// isControl reports whether r is an ASCII control character, C0 or DEL.
func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// readCString reads a NUL-terminated string of at most maxSOCKS4Field bytes.
func readCString(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if c == 0 {
			return string(b), nil
		}
		if len(b) == maxSOCKS4Field {
			return "", errFieldTooLong
		}
		b = append(b, c)
	}
}

// socks5Answer is a SOCKS5 reply with the bound address, 0.0.0.0:0 when
// bound is nil or not TCP.
func socks5Answer(code byte, bound net.Addr) []byte {
	ip, port := netip.IPv4Unspecified(), uint16(0)
	if ta, ok := bound.(*net.TCPAddr); ok && ta != nil {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			ip, port = a.Unmap(), uint16(ta.Port)
		}
	}
	b := []byte{socks5Version, code, 0, socks5IPv4}
	if ip.Is6() {
		b[3] = socks5IPv6
	}
	b = append(b, ip.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, port)
}

// socks4Answer is a SOCKS4 reply; DSTPORT and DSTIP are ignored by clients.
func socks4Answer(code byte) []byte {
	return []byte{0, code, 0, 0, 0, 0, 0, 0}
}
