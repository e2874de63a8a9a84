package sshconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// ParseDestination splits what a user types after ssh, the destination of
// sshdial.Connect and of the command: [user@]host[:port],
// [user@][v6addr]:port and ssh://[user@]host[:port] (no path; a password
// in the URL, a ':' in its user part, is refused). port is 0 when not
// given.
//
// As OpenSSH does, the user is everything before the last '@' (a user name may hold '@'),
// except in an ssh:// URL, which is read as ParseSSHURI says (the user ends at the first
// '@', and the host is a domain name or IPv4 address). A bare IPv6 address (more than one
// ':' and no brackets) is a host without a port.
func ParseDestination(dest string) (user, host string, port int, err error) {
	if strings.TrimSpace(dest) == "" {
		return "", "", 0, errors.New("sshdial: empty destination")
	}
	if strings.HasPrefix(dest, "ssh://") {
		return parseSSHURL(dest)
	}
	if len(dest) >= 6 && strings.EqualFold(dest[:6], "ssh://") {
		// ssh takes only a lower-case scheme, and reads the rest as
		// user@host, where it is a bad host name.
		return "", "", 0, errors.New("sshdial: destination: write the scheme ssh:// in lower case")
	}
	rest := dest
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		user, rest = dest[:i], dest[i+1:]
		if user == "" {
			return "", "", 0, fmt.Errorf("sshdial: destination %q: empty user before '@'", dest)
		}
	}
	host, portStr, err := splitHostPortOpt(rest)
	if err != nil {
		return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
	}
	if portStr != "" {
		if port, err = parsePort(portStr); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
		}
	}
	if err := checkDestinationHost(host); err != nil {
		return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
	}
	if user != "" {
		if err := CheckRemoteUser(user); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
		}
	}
	return user, host, port, nil
}

// RedactDestinations returns a comma-separated list of destinations (a
// ProxyJump value) fit for an error message: the user part of each ssh://
// URL, which may hold a password, is replaced by "…", and so is all of
// an ssh:// URL without '@' that has a ':'. A password may hold
// ',', which a URL need not encode: the user part of an ssh:// URL without
// '@' runs on over the destinations after it, up to the first with an '@'
// (not into another ssh:// URL), when it has a ':' (ssh://u:a,b@h is
// ssh://…@h).
func RedactDestinations(list string) string {
	s, _ := redactDestinations(list)
	return s
}

// redactDestinations is RedactDestinations; merged reports whether a user
// part ran over several destinations, which are then parts of a password.
func redactDestinations(list string) (redacted string, merged bool) {
	url := urlStart
	parts := strings.Split(list, ",")
	out := make([]string, 0, len(parts))
	for i := 0; i < len(parts); i++ {
		d := parts[i]
		start := url(d)
		if start < 0 {
			out = append(out, d)
			continue
		}
		user := start + 6 // where the user part starts
		j := i
		if strings.LastIndexByte(d, '@') < user {
			for k := i + 1; k < len(parts) && url(parts[k]) < 0; k++ {
				if strings.IndexByte(parts[k], '@') >= 0 {
					j = k
					break
				}
			}
		}
		span := strings.Join(parts[i:j+1], ",")
		at := strings.LastIndexByte(span, '@')
		if j > i && !strings.Contains(span[user:at], ":") {
			span, j, at = d, i, -1 // no password: d alone, with no user part
		}
		if at < user {
			// No '@': a ':' may start a password that a blank, a NUL
			// or ",ssh://" cut off from its '@'.
			if strings.Contains(d[user:], ":") {
				d = d[:user] + "…"
			}
			out = append(out, d)
			continue
		}
		out = append(out, span[:user]+"…"+span[at:])
		merged = merged || j > i
		i = j
	}
	return strings.Join(out, ","), merged
}

// urlStart returns where "ssh://", in any case, is in the destination d
// when d starts with it (after blanks), or -1.
func urlStart(d string) int {
	s := strings.TrimLeft(d, whitespace)
	if len(s) >= 6 && strings.EqualFold(s[:6], "ssh://") {
		return len(d) - len(s)
	}
	return -1
}

// parseSSHURL parses an ssh:// destination as OpenSSH's parse_ssh_uri
// (see ParseSSHURI), and refuses a password: a ':' in the user part, which
// OpenSSH would send as part of the user name.
func parseSSHURL(dest string) (user, host string, port int, err error) {
	// The URL is never quoted in an error in full: its user part might
	// hold a password.
	rest := dest[len("ssh://"):]
	if at := strings.IndexByte(rest, '@'); at >= 0 && strings.Contains(rest[:at], ":") {
		return "", "", 0, errors.New("sshdial: ssh:// destination holds a password (a ':' before its '@'); passwords are not accepted in URLs")
	}
	user, host, port, err = ParseSSHURI(rest)
	if err != nil {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination: %w", err)
	}
	if strings.Contains(user, ":") {
		// Written %3A: still what ssh sends as user:authstyle.
		return "", "", 0, errors.New("sshdial: ssh:// destination holds a password (a ':' in its user, percent-encoded); passwords are not accepted in URLs")
	}
	if port < 0 {
		port = 0
	}
	if err := checkDestinationHost(host); err != nil {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination: %w", err)
	}
	if user != "" {
		if err := CheckRemoteUser(user); err != nil {
			// CheckRemoteUser quotes the user: give only the reason.
			return "", "", 0, errors.New("sshdial: ssh:// destination: invalid user name")
		}
	}
	return user, host, port, nil
}

// ParseSSHURI parses s, what follows "ssh://" in a destination or a jump
// host, as OpenSSH's parse_ssh_uri: [user[;params]@]host[:port][/].
//   - The user part ends at the first '@' (a second '@' is refused);
//     parameters after a ';' in it are dropped, and the rest is
//     percent-decoded, with '+' for a space (an '@' in a user name is
//     written %40; %00 is refused).
//   - The host, without brackets, must be a domain name as OpenSSH's
//     valid_domain has it: letters, digits, '-', '_' and '.', starting with
//     a letter, digit or '_', no ".."; a final '.' is dropped. So an IPv6
//     address is refused (write it as [addr]:port without ssh://).
//   - The port, after ':', is 1-65535 or a service name; -1 when not
//     given (also after a ':' with nothing after it). A path is refused.
//
// Its errors quote no part of the user.
func ParseSSHURI(s string) (user, host string, port int, err error) {
	port = -1
	if at := strings.IndexByte(s, '@'); at >= 0 {
		raw := s[:at]
		if i := strings.IndexByte(raw, ';'); i >= 0 {
			raw = raw[:i] // connection parameters: ignored, as OpenSSH does
		}
		if raw == "" {
			return "", "", 0, errors.New("empty user before '@'")
		}
		if user, err = urlDecode(raw); err != nil {
			return "", "", 0, err
		}
		s = s[at+1:]
		if strings.IndexByte(s, '@') >= 0 {
			// ssh refuses it too (no host, port or path holds '@').
			// Not quoted: what was meant as the user, and perhaps a
			// password, may run up to the last '@'.
			return "", "", 0, errors.New("more than one '@' (write an '@' in the user name as %40)")
		}
	}
	hostPart, rest, hasRest, err := hpdelim(s) // as parse_uri's hpdelim2
	if err != nil {
		return "", "", 0, err
	}
	var delim byte // ':' or '/', what ended the host
	if hasRest {
		delim = s[len(s)-len(rest)-1]
	}
	if hostPart == "" {
		return "", "", 0, errors.New("empty host name")
	}
	if strings.Contains(hostPart, ":") {
		return "", "", 0, errors.New("an IPv6 address is not accepted after ssh:// (nor by ssh): write [address]:port without ssh://")
	}
	if host, err = validDomain(hostPart); err != nil {
		return "", "", 0, err
	}
	if rest != "" && delim == ':' {
		portStr, path, _ := strings.Cut(rest, "/")
		if port, err = parsePort(portStr); err != nil {
			return "", "", 0, err
		}
		rest = path
	}
	if rest != "" {
		return "", "", 0, errors.New("a path is not accepted (only ssh://[user@]host[:port])")
	}
	return user, host, port, nil
}

// urlDecode decodes s as OpenSSH's urldecode: %XX escapes and '+' for a
// space; a bad escape or %00 is an error, which does not quote s.
func urlDecode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errors.New("bad %-escape in the user part (write '%' as %25)")
			}
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if v == 0 {
				return "", errors.New("%00 in the user part")
			}
			b.WriteByte(v)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// validDomain checks name as OpenSSH's valid_domain does (in the C
// locale) and returns it without a final '.'.
func validDomain(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty host name")
	}
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }
	if !alnum(name[0]) && name[0] != '_' {
		return "", fmt.Errorf("host %q starts with an invalid character (an ssh:// host is a domain name or IPv4 address)", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '.' && i > 0 && name[i-1] == '.' {
			return "", fmt.Errorf("host %q has \"..\"", name)
		}
		if c != '.' && c != '-' && c != '_' && !alnum(c) {
			return "", fmt.Errorf("host %q contains invalid characters (an ssh:// host is a domain name or IPv4 address: letters, digits, '-', '_' and '.')", name)
		}
	}
	return strings.TrimSuffix(name, "."), nil
}

// splitHostPortOpt splits host[:port] and [host]:port; a bare IPv6 address has no port.
func splitHostPortOpt(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errors.New("missing ']' after '['")
		}
		host, rest := s[1:end], s[end+1:]
		switch {
		case rest == "":
			return host, "", nil
		case rest[0] == ':':
			if rest[1:] == "" {
				return "", "", errors.New("empty port after ':'")
			}
			return host, rest[1:], nil
		default:
			return "", "", fmt.Errorf("unexpected %q after ']'", rest)
		}
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", nil
	case 1:
		i := strings.IndexByte(s, ':')
		if s[i+1:] == "" {
			return "", "", errors.New("empty port after ':'")
		}
		return s[:i], s[i+1:], nil
	default:
		// A bare IPv6 address; [addr]:port gives a port.
		if _, err := netip.ParseAddr(s); err != nil {
			return "", "", fmt.Errorf("%q has several ':' but is not an IPv6 address (write [host]:port)", s)
		}
		return s, "", nil
	}
}

// checkDestinationHost refuses what OpenSSH's ssh_valid_hostname refuses, and brackets.
func checkDestinationHost(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if h[0] == '-' {
		return fmt.Errorf("host name %q starts with '-'", h)
	}
	for _, r := range h {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("host name %q contains a space or control character", h)
		}
		if strings.ContainsRune("'`\"$\\;&<>|(){},[]@", r) {
			return fmt.Errorf("host name %q contains the invalid character %q", h, r)
		}
	}
	return nil
}

// CheckRemoteUser refuses what OpenSSH's ssh_valid_ruser refuses.
func CheckRemoteUser(u string) error {
	if u == "" {
		return errors.New("empty user name")
	}
	if u[0] == '-' {
		return fmt.Errorf("user name %q starts with '-'", u)
	}
	for i, r := range u {
		if unicode.IsControl(r) {
			return fmt.Errorf("user name %q contains a control character", u)
		}
		if strings.ContainsRune("'`\";&<>|(){}", r) {
			return fmt.Errorf("user name %q contains the invalid character %q", u, r)
		}
		if unicode.IsSpace(r) && strings.HasPrefix(u[i+1:], "-") {
			return fmt.Errorf("user name %q has '-' after a space", u)
		}
	}
	if strings.HasSuffix(u, `\`) {
		return fmt.Errorf("user name %q ends with '\\'", u)
	}
	return nil
}
