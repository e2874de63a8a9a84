package sshconfig

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MatchPattern matches s against a pattern of ssh_config or known_hosts
// as OpenSSH's match_pattern: * is any run of bytes, ? exactly one; all
// else literal.
// Unlike match_pattern, which tries every way the stars could match (a
// time exponential in their number: "*?*?*?…z" takes ssh minutes), only
// the last star seen is moved on a mismatch: a later star can match
// whatever an earlier one would have, so the result is the same, in time
// len(s)*len(pattern) at most.
func MatchPattern(s, pattern string) bool {
	si, pi := 0, 0
	star, starS := -1, 0 // the last star's index in pattern, and where in s its run ends
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, starS = pi, si
			pi++
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			si++
			pi++
		case star >= 0:
			starS++
			si, pi = starS, star+1
		default:
			return false
		}
	}
	return strings.TrimLeft(pattern[pi:], "*") == ""
}

// MatchPatternList matches s against a comma-separated list of patterns
// (of ssh_config or known_hosts) as OpenSSH's match_pattern_list: 1 for a
// match, -1 for a negated match (which wins), 0 for none. With lower, the
// patterns are lowercased (ASCII).
func MatchPatternList(s, list string, lower bool) int {
	got := 0
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if len(p) >= 1023 {
			return 0 // as OpenSSH: a sub-pattern too long fails the list
		}
		if lower {
			p = LowerASCII(p)
		}
		if MatchPattern(s, p) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// interfaceAddrs lists the local interfaces' addresses; a variable for
// tests.
var interfaceAddrs = net.InterfaceAddrs

// localNetwork reports whether an address of a local interface is in one
// of the comma-separated CIDR blocks of list, as OpenSSH 9.4's Match
// localnetwork.
func localNetwork(list string) (bool, error) {
	var prefixes []netip.Prefix
	for _, c := range strings.Split(list, ",") {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return false, fmt.Errorf("%q is not an address/prefix", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		prefixes = append(prefixes, p.Masked())
	}
	addrs, err := interfaceAddrs()
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		for _, p := range prefixes {
			if p.Contains(ip) {
				return true, nil
			}
		}
	}
	return false, nil
}

// LowerASCII returns s with A-Z in lowercase and every other byte as it
// is, as ssh(1) lowercases host names and patterns (tolower in the C
// locale): strings.ToLower would also fold "Ä" and the Kelvin sign, which
// ssh keeps.
func LowerASCII(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) < 0 {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
