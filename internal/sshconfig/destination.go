package sshconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// ParseDestination splits what a user types after ssh, the destination of
// sshdial.Connect and of the command: [user@]host[:port],
// [user@][v6addr]:port and ssh://[user@]host[:port] (no path, query or
// fragment; a password in the URL is refused). port is 0 when not given.
//
// As OpenSSH does, the user is everything before the last '@' (a user name may hold '@'),
// except in an ssh:// URL, where an '@' in the user must be percent-encoded. A bare IPv6
// address (more than one ':' and no brackets) is a host without a port.
func ParseDestination(dest string) (user, host string, port int, err error) {
	if strings.TrimSpace(dest) == "" {
		return "", "", 0, errors.New("sshdial: empty destination")
	}
	if len(dest) >= 6 && strings.EqualFold(dest[:6], "ssh://") {
		return parseSSHURL(dest)
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
// URL, which may hold a password, is replaced by "…". A password may hold
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
	// url is where "ssh://" is in d when d starts with it (after blanks), or -1.
	url := func(d string) int {
		s := strings.TrimLeft(d, whitespace)
		if len(s) >= 6 && strings.EqualFold(s[:6], "ssh://") {
			return len(d) - len(s)
		}
		return -1
	}
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
			out = append(out, d)
			continue
		}
		out = append(out, span[:user]+"…"+span[at:])
		merged = merged || j > i
		i = j
	}
	return strings.Join(out, ","), merged
}

// parseSSHURL parses ssh://[user[;params]@]host[:port][/] as OpenSSH's parse_uri does,
// refusing a password, a path, a query and a fragment.
func parseSSHURL(dest string) (user, host string, port int, err error) {
	// The URL is never quoted in an error in full: it might hold a password.
	// Nor is any of it when an '@' follows a '/', '?' or '#': what comes
	// before that '@' is meant as the user (ssh takes it so), and may hold a
	// password that url.Parse would read as host, port and path.
	if end := strings.IndexAny(dest[6:], "/?#"); end >= 0 && strings.Contains(dest[6+end:], "@") {
		return "", "", 0, errors.New("sshdial: ssh:// destination has '/', '?' or '#' before its '@' (percent-encode them in the user)")
	}
	u, perr := url.Parse("ssh://" + numericURLPort(dest)[6:])
	if perr != nil {
		return "", "", 0, errors.New("sshdial: destination is not a valid ssh:// URL")
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return "", "", 0, errors.New("sshdial: ssh:// destination holds a password; passwords are not accepted in URLs")
		}
		user = u.User.Username()
		if i := strings.IndexByte(user, ';'); i >= 0 {
			user = user[:i] // connection parameters: ignored, as OpenSSH does
		}
		if user == "" {
			return "", "", 0, errors.New("sshdial: ssh:// destination has an empty user before '@'")
		}
	}
	safe := *u
	safe.User = nil
	if u.Path != "" && u.Path != "/" {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q has a path; only ssh://[user@]host[:port] is accepted", safe.Redacted())
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q has a query; only ssh://[user@]host[:port] is accepted", safe.Redacted())
	}
	if u.Fragment != "" || strings.Contains(dest, "#") {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q has a fragment; only ssh://[user@]host[:port] is accepted", safe.Redacted())
	}
	host = u.Hostname()
	if strings.Contains(host, ":") && !strings.HasPrefix(u.Host, "[") {
		return "", "", 0, errors.New("sshdial: ssh:// destination has a ':' in its host (write an IPv6 address in brackets)")
	}
	if p := u.Port(); p != "" {
		if port, err = parsePort(p); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: %w", safe.Redacted(), err)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: empty port after ':'", safe.Redacted())
	}
	if err := checkDestinationHost(host); err != nil {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: %w", safe.Redacted(), err)
	}
	if user != "" {
		if err := CheckRemoteUser(user); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: %w", safe.Redacted(), err)
		}
	}
	return user, host, port, nil
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

// numericURLPort returns the ssh:// URL dest with a port given as a
// service name (ssh://host:https, which OpenSSH takes) replaced by its
// number, for url.Parse; dest unchanged when its port is no service name.
func numericURLPort(dest string) string {
	auth := dest[6:]
	end := strings.IndexAny(auth, "/?#")
	if end < 0 {
		end = len(auth)
	}
	hostport := auth[strings.LastIndexByte(auth[:end], '@')+1 : end]
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.IndexByte(hostport[i:], ']') >= 0 {
		return dest
	}
	name := hostport[i+1:]
	if strings.Trim(name, "0123456789") == "" { // none, or a number
		return dest
	}
	p, err := A2Port(name)
	if err != nil {
		return dest
	}
	start := 6 + (end - len(hostport)) + i + 1
	return dest[:start] + strconv.Itoa(p) + dest[6+end:]
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
