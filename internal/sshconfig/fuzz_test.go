package sshconfig

import (
	"context"
	"crypto/sha1"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// The fuzz targets of the package. Run one with, for example,
//
//	go test -run XXX -fuzz '^FuzzResolve$' -fuzztime 3m -parallel 1 ./internal/sshconfig
//
// Without -fuzz, go test runs each target on its seeds and on the inputs
// under testdata/fuzz, which keep the failures found so far.

// fuzzTimeout bounds one call of the code under test: bad input must not
// make it hang.
const fuzzTimeout = 5 * time.Second

// fuzzHosts are destinations' hosts the seeds are tried with.
var fuzzHosts = []string{"h", "web", "db", "WEB", "x.corp", "bastion.corp", "10.0.0.1", "::1", "alias", "tok"}

// corpusSeeds returns the text of the testdata/corpus configs, @DIR@ made
// a directory that does not exist, without their Include lines that name
// a directory.
func corpusSeeds(f *testing.F) []string {
	f.Helper()
	names, err := filepath.Glob("testdata/corpus/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	var texts []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		// Include lines with a '/' are left out: the fuzz runs skip them.
		var lines []string
		for _, line := range strings.Split(string(b), "\n") {
			if kw, _ := LineKeyword(line); kw != "include" || !strings.Contains(line, "/") {
				lines = append(lines, strings.ReplaceAll(line, "@DIR@", "/nonexistent-sshconfig-fuzz"))
			}
		}
		texts = append(texts, strings.Join(lines, "\n"))
	}
	return texts
}

// includesOutside reports whether text might make Resolve read a file
// outside the fuzz run's ~/.ssh: an Include keyword (however spelt:
// quotes removed, in any case) with a '/' anywhere. Include without '/'
// stays in ~/.ssh (relative paths), or names a home directory (~user),
// which is an error.
func includesOutside(text string) bool {
	t := strings.ReplaceAll(text, `"`, "")
	return strings.Contains(text, "/") &&
		(strings.Contains(strings.ToLower(t), "nclude") || strings.Contains(strings.ToUpper(t), "NCLUDE"))
}

// jumpPasswords returns the passwords of the ssh:// URLs of ProxyJump
// lines: for each part of the value (up to the first blank, as ssh takes
// it) that starts with ssh://, what follows the first ':' up to the last
// '@' before the next such part (a password may hold ',', which a URL
// need not encode, and ssh splits the list at each ','), and the pieces
// between ','s of what follows it up to the first '@' (a URL's password
// holds no '@'), which ssh takes as hops. Those of fewer than 3 bytes, or
// found elsewhere in text, are left out: an error may name them for other
// reasons.
func jumpPasswords(text string) []string {
	isURL := func(p string) bool { return len(p) >= 6 && strings.EqualFold(p[:6], "ssh://") }
	var pw []string
	for _, line := range strings.Split(text, "\n") {
		kw, rest := LineKeyword(line)
		if kw != "proxyjump" {
			continue
		}
		v := strings.TrimLeft(rest, whitespace+"=")
		if i := strings.IndexAny(v, " \t"); i >= 0 {
			v = v[:i]
		}
		parts := strings.Split(v, ",")
		for i, p := range parts {
			if !isURL(p) {
				continue
			}
			u := p[6:]
			for j := i + 1; j < len(parts) && !isURL(parts[j]); j++ {
				u += "," + parts[j]
			}
			at := strings.LastIndexByte(u, '@')
			c := strings.IndexByte(u, ':')
			if at < 0 || c < 0 || c > at {
				continue
			}
			first := c + 1 + strings.IndexByte(u[c+1:], '@')
			for _, p := range append([]string{u[c+1 : at]}, strings.Split(u[c+1:first], ",")...) {
				if len(p) >= 3 && strings.Count(text, p) == 1 {
					pw = append(pw, p)
				}
			}
		}
	}
	return pw
}

// leaks reports whether msg holds secret, as written or as %q quotes it.
func leaks(msg, secret string) bool {
	q := strconv.Quote(secret)
	return strings.Contains(msg, secret) || strings.Contains(msg, q[1:len(q)-1])
}

// quoted returns the strings %q quotes in msg: only they may hold what
// the input held (the rest of a message is fixed text).
func quoted(msg string) []string {
	var qs []string
	for i := strings.IndexByte(msg, '"'); i >= 0; {
		q, err := strconv.QuotedPrefix(msg[i:])
		if err != nil {
			i++
		} else {
			s, _ := strconv.Unquote(q)
			qs = append(qs, s)
			i += len(q)
		}
		j := strings.IndexByte(msg[i:], '"')
		if j < 0 {
			break
		}
		i += j
	}
	return qs
}

// fuzzExec stands for Match exec commands: nothing runs; the result
// depends on the command only.
func fuzzExec(_ context.Context, command string) (bool, error) {
	return sha1.Sum([]byte(command))[0]&1 == 0, nil
}

// fuzzLookup stands for the resolver of CanonicalizeHostname: no name is
// looked up.
func fuzzLookup(_ context.Context, name string) bool {
	return sha1.Sum([]byte(name))[0]&1 == 0
}

// FuzzResolve resolves a config of arbitrary text, with an arbitrary host
// and -o line. Resolve must return (no panic, no hang) with either an
// error, which starts "sshconfig:" and names no password of a ProxyJump
// ssh:// URL, or a configuration with ssh's invariants: the host as
// typed, a port from 1 to 65535, identity files, and no negative count.
// Match exec runs nothing (Options.Exec is a stub), no name is looked up,
// and no file outside the run's temporary home is read.
func FuzzResolve(f *testing.F) {
	for i, text := range corpusSeeds(f) {
		f.Add(text, fuzzHosts[i%len(fuzzHosts)], "")
	}
	for i, line := range fuzzLines {
		f.Add(strings.ReplaceAll(line, "@DIR@", "/nonexistent")+"\n  Port 1111\n", fuzzHosts[i%len(fuzzHosts)], fuzzOptions[i%len(fuzzOptions)])
	}
	for i, line := range append(append([]string{}, edgeLines...), fuzzBadLines...) {
		f.Add(line+"\n  Port 1111\n", fuzzHosts[i%len(fuzzHosts)], "")
	}
	for _, s := range []struct{ text, host, cli string }{
		{"Include config\n", "h", ""},
		{"Host h\n  Include *\n", "h", ""},
		{"Include c*\nHost nomatch\n  Include config\n", "h", ""},
		{"ProxyJump ssh://user:hunter2@jump.example.com:2222\n", "h", ""},
		{"ProxyJump ssh://user:hunter2@jump,ssh://u2:pa55word@j2:bad\n", "h", ""},
		{"Host *\n", "h", "ProxyJump=ssh://me:s3cret@j:0"},
		{"ProxyJump ssh://u:SEKRIT @h\n", "h", ""},         // a blank in the password ends the value
		{"ProxyJump ssh://u:SEKRIT,ssh://@h\n", "h", ""},   // so does a ",ssh://"
		{"ProxyJump ssh://u:SEK\x00RIT@h\n", "h", ""},      // and a NUL
		{"Host *\n", "h", "ProxyJump=ssh://me:s3cret x@j"}, // from the command line too
		{"CanonicalizeHostname yes\nCanonicalDomains a.example b.example\nMatch canonical\n  Port 3\n", "short", ""},
		{"Match final exec \"test %h = x\"\n  User fin\n", "h", ""},
		{"HostKeyAlias KA\nStrictHostKeyChecking ASK\nAddressFamily INET6\n", "h", ""},
		{"IgnoreUnknown Foo*\nFooBar 1\n", "h", ""},
	} {
		f.Add(s.text, s.host, s.cli)
	}
	f.Fuzz(func(t *testing.T, text, host, cli string) {
		if includesOutside(text) {
			t.Skip("Include with a '/': it could read any file")
		}
		dir := t.TempDir()
		cfg := filepath.Join(dir, ".ssh", "config")
		if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		o := Options{
			Home: dir, IncludeHome: dir, LocalUser: "me", UID: "1000", LocalHostName: "box.example",
			Exec: fuzzExec, LookupHost: fuzzLookup,
		}
		// The -F file, or the user's (whose permissions are checked);
		// exec criteria run or are skipped.
		switch len(host) % 3 {
		case 0:
			o.ConfigFile = cfg
		case 1:
			o.UserConfig = cfg
		default:
			o.ConfigFile, o.NoExec = cfg, true
		}
		if cli != "" {
			o.CommandLine = []string{cli}
		}
		var c *Config
		var err error
		testutil.Within(t, fuzzTimeout, "Resolve", func() { c, err = Resolve(host, o) })
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "sshconfig: ") {
				t.Errorf("error %q does not start with \"sshconfig: \"", msg)
			}
			for _, p := range jumpPasswords(text + "\n" + cli) {
				if leaks(msg, p) {
					t.Errorf("error %q holds the password %q of a ProxyJump URL", msg, p)
				}
			}
			return
		}
		if c.Host != host {
			t.Errorf("Host = %q; want %q as typed", c.Host, host)
		}
		if c.Port < 1 || c.Port > 65535 {
			t.Errorf("Port = %d", c.Port)
		}
		if len(c.IdentityFiles) == 0 {
			t.Error("no IdentityFiles")
		}
		if c.ServerAliveCountMax < 0 || c.ServerAliveInterval < 0 || c.ConnectTimeout < -1 || c.NumberOfPasswordPrompts < 0 {
			t.Errorf("negative count or time: %+v", c)
		}
		if c.Tokens.P != strconv.Itoa(c.Port) || c.Tokens.H != c.HostName || c.Tokens.N != host || c.Tokens.R != c.User {
			t.Errorf("tokens %+v disagree with the configuration %+v", c.Tokens, c)
		}
		if !o.NoExec && len(c.SkippedExec) > 0 {
			t.Errorf("SkippedExec %q without NoExec", c.SkippedExec)
		}
	})
}

// FuzzParseDestination checks ParseDestination: no panic; on success a
// valid host (ValidHostName), a valid user (CheckRemoteUser) or none, a
// port from 0 to 65535, and the same result for the same destination
// given as [user@]host:port, which it must parse back; on error, never the
// password of an ssh:// URL in the message.
func FuzzParseDestination(f *testing.F) {
	for _, d := range append(append([]string{}, defaultDests...),
		"h", "bob@h", "bob@h:2222", "[::1]:22", "user@[2001:db8::1]:2022", "::1", "fe80::1%eth0",
		"ssh://h", "ssh://bob@h", "ssh://bob@h:2222/", "SSH://bob@[::1]:22", "ssh://bob;fp=x@h",
		"ssh://bob:secret@h", "ssh://bob:sec,ret@h:22", "ssh://bob:s%40cret@h", "ssh://u:p/w@h", "ssh://u:p#w@h",
		"ssh://h:https", "h:ssh", "ssh://h/path", "ssh://h?q", "ssh://h#f", "ssh://h:", "h:", "@h", "a@b@h",
		"-oProxyCommand=x", "h;rm", "ssh://-h", "ssh://u@h:0", "h:65536", "h: 22", "ssh://h:+22",
	) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, dest string) {
		var user, host string
		var port int
		var err error
		testutil.Within(t, fuzzTimeout, "ParseDestination", func() { user, host, port, err = ParseDestination(dest) })
		if err != nil {
			msg := err.Error()
			if len(dest) >= 6 && strings.EqualFold(dest[:6], "ssh://") {
				auth := dest[6:]
				if at := strings.LastIndexByte(auth, '@'); at >= 0 {
					if c := strings.IndexByte(auth[:at], ':'); c >= 0 {
						p := auth[c+1 : at]
						if p != "" && !strings.Contains(auth[at:], p) && !strings.Contains(auth[:c], p) && !strings.Contains("ssh://", p) {
							for _, q := range quoted(msg) {
								if strings.Contains(q, p) {
									t.Errorf("ParseDestination(%q): error %q holds the password %q", dest, msg, p)
								}
							}
						}
					}
				}
			}
			return
		}
		if err := ValidHostName(host); err != nil {
			t.Errorf("ParseDestination(%q): host %q: %v", dest, host, err)
		}
		if user != "" {
			if err := CheckRemoteUser(user); err != nil {
				t.Errorf("ParseDestination(%q): user %q: %v", dest, user, err)
			}
		}
		if port < 0 || port > 65535 {
			t.Errorf("ParseDestination(%q): port %d", dest, port)
		}
		// The parts given back as [user@]host[:port] (host in brackets when
		// it has ':') parse to the same parts.
		again := host
		if strings.Contains(host, ":") {
			again = "[" + host + "]"
		}
		if port != 0 {
			again += ":" + strconv.Itoa(port)
		}
		if user != "" {
			again = user + "@" + again
		}
		if strings.HasPrefix(LowerASCII(again), "ssh://") {
			return // a user starting with ssh:// (percent-encoded in a URL): a URL again
		}
		u2, h2, p2, err := ParseDestination(again)
		if err != nil || u2 != user || h2 != host || p2 != port {
			t.Errorf("ParseDestination(%q) = %q, %q, %d; ParseDestination(%q) = %q, %q, %d, %v", dest, user, host, port, again, u2, h2, p2, err)
		}
	})
}

// FuzzA2Port checks A2Port: no panic or hang; a result from 0 to 65535;
// a decimal number (strtonum's syntax) is that number or an error; a
// port it gives back as a number parses to itself.
func FuzzA2Port(f *testing.F) {
	for _, s := range []string{"22", "0", "65535", "65536", "-0", "+22", " 22", "22 ", "022", "0x16", "1e3",
		"ssh", "http", "https", "SSH", "ssh ", "", "-", "+", "99999999999999999999", "-9223372036854775808",
		"domain", "www", "\x00", "ssh\x00", "tcp", "22/tcp", "http-alt", "ſſh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p int
		var err error
		testutil.Within(t, fuzzTimeout, "A2Port", func() { p, err = A2Port(s) })
		if err != nil {
			if err.Error() == "" {
				t.Errorf("A2Port(%q): empty error", s)
			}
			return
		}
		if p < 0 || p > 65535 {
			t.Errorf("A2Port(%q) = %d", s, p)
		}
		if isNumber(s) {
			n, perr := strconv.ParseInt(strings.TrimLeft(s, " \t\n\v\f\r+"), 10, 64)
			if perr != nil || int64(p) != n && int64(p) != -n {
				t.Errorf("A2Port(%q) = %d", s, p)
			}
		}
		if q, err := A2Port(strconv.Itoa(p)); err != nil || q != p {
			t.Errorf("A2Port(%q) = %d; A2Port(%q) = %d, %v", s, p, strconv.Itoa(p), q, err)
		}
	})
}

// FuzzRedactDestinations checks what RedactDestinations promises: the
// user part of each ssh:// URL, which may hold a password, is gone from
// the result, and nothing else changes. list is any list; a URL
// ssh://user:password@host made of the other arguments is appended to it,
// and its password must not be in the result.
func FuzzRedactDestinations(f *testing.F) {
	for _, s := range []struct{ list, user, pass, host string }{
		{"", "u", "hunter2", "jump"},
		{"a,b@c:22", "alice", "s3cret", "jump.example.com:2222"},
		{"SSH://bob:pw@j1", "u.v", "word", "[::1]:22"},
		{"bob@j1,ssh://j2:22", "u", "p@ss", "h"},
		{"ssh://u@h/x@y", "u", "pass;x=1", "h"},
		{"none", "u", "%70assword", "h"},
		{"ssh://h1:22,bob@h2", "u", "pw1", "h"},
	} {
		f.Add(s.list, s.user, s.pass, s.host)
	}
	f.Fuzz(func(t *testing.T, list, user, pass, host string) {
		var got string
		testutil.Within(t, fuzzTimeout, "RedactDestinations", func() { got = RedactDestinations(list) })
		if !strings.Contains(LowerASCII(list), "ssh://") && got != list {
			t.Errorf("RedactDestinations(%q) = %q; want it unchanged (no ssh:// URL)", list, got)
		}
		if again := RedactDestinations(got); again != got {
			t.Errorf("RedactDestinations(%q) = %q; redacted again: %q", list, got, again)
		}
		// Each ssh:// part with an '@' (past the scheme) has its user part
		// replaced; every other part without an ssh:// URL before it is
		// unchanged.
		if !strings.Contains(got, "…") {
			for _, d := range strings.Split(list, ",") {
				if len(d) >= 6 && strings.EqualFold(d[:6], "ssh://") && strings.LastIndexByte(d, '@') >= 6 {
					t.Errorf("RedactDestinations(%q) = %q: the user of %q is not redacted", list, got, d)
				}
			}
		}

		// A URL with a password: user and password without the characters
		// a URL's user part cannot hold unencoded; a host without '@' and
		// ','.
		if user == "" || pass == "" || host == "" || strings.ContainsAny(user, ":@/?#") || strings.ContainsAny(pass, "@/?#") || strings.ContainsAny(host, "@,/?#") {
			return
		}
		url := "ssh://" + user + ":" + pass + "@" + host
		full := list + "," + url
		got = RedactDestinations(full)
		if strings.Contains(list+",ssh://…@"+host, pass) {
			return // the password is also elsewhere
		}
		if strings.Contains(got, pass) {
			t.Errorf("RedactDestinations(%q) = %q: it holds the password %q", full, got, pass)
		}
		if !strings.HasSuffix(got, "ssh://…@"+host) {
			t.Errorf("RedactDestinations(%q) = %q; want it to end with %q", full, got, "ssh://…@"+host)
		}
	})
}

// FuzzExpandTilde checks ExpandTilde against OpenSSH's tilde_expand: a
// path not starting with '~' is unchanged; ~ and ~/path are the home
// directory, one '/' and the path without its leading slashes (ssh 9.2:
// "~//x" is "/home/me/x"); an unknown home is an error.
func FuzzExpandTilde(f *testing.F) {
	for _, s := range []struct{ p, home string }{
		{"~", "/home/me"}, {"~/", "/home/me"}, {"~/.ssh/id_%h", "/home/me"}, {"~/a//b", "/home/me/"},
		{"~root/x", "/home/me"}, {"~root", "/"}, {"~nosuchuser-sshconfig/x", "/h"},
		{"/abs/~", "/h"}, {"", "/h"}, {"~/x", ""}, {"~~", "/h"}, {"~/x", "/"}, {"~root//.ssh", "/h"},
	} {
		f.Add(s.p, s.home)
	}
	f.Fuzz(func(t *testing.T, p, home string) {
		var got string
		var err error
		testutil.Within(t, fuzzTimeout, "ExpandTilde", func() { got, err = ExpandTilde(p, home) })
		if !strings.HasPrefix(p, "~") {
			if err != nil || got != p {
				t.Errorf("ExpandTilde(%q, %q) = %q, %v; want it unchanged", p, home, got, err)
			}
			return
		}
		if p != "~" && !strings.HasPrefix(p, "~/") {
			return // ~user: depends on the system's users
		}
		if home == "" {
			if err == nil {
				t.Errorf("ExpandTilde(%q, \"\") = %q; want an error (home unknown)", p, got)
			}
			return
		}
		want := strings.TrimSuffix(home, "/") + "/" + strings.TrimLeft(p[1:], "/")
		if err != nil || got != want {
			t.Errorf("ExpandTilde(%q, %q) = %q, %v; want %q", p, home, got, err, want)
		}
	})
}

// FuzzLineKeyword checks LineKeyword: no panic; the keyword is made of
// the line's bytes (quotes removed) with A-Z lowercased, as ssh lowercases
// it in the C locale (not Unicode case folding: ssh does not know
// "Hostname" with a dotless or dotted I); the rest is part of the line;
// Known and Used agree with the keyword ssh would look up.
func FuzzLineKeyword(f *testing.F) {
	for _, l := range append(append(append([]string{}, fuzzLines...), edgeLines...), fuzzBadLines...) {
		f.Add(l)
	}
	for _, l := range []string{"Port 22", "  Port=22", "Port==22", "\"Port\" 22", "Po\"rt\" 22", "PORT\t22 \t\f",
		"# c", "", " ", "=", "= Port 22", "Port\x0022", "\"unterminated",
		"\f", "Port\f", "Port \"22"} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var kw, rest string
		testutil.Within(t, fuzzTimeout, "LineKeyword", func() { kw, rest = LineKeyword(line) })
		text := line
		if i := strings.IndexByte(text, 0); i >= 0 {
			text = text[:i]
		}
		if !strings.Contains(LowerASCII(strings.ReplaceAll(text, `"`, "")), kw) {
			t.Errorf("LineKeyword(%q): keyword %q is not in the line (A-Z lowercased, quotes removed)", line, kw)
		}
		if LowerASCII(kw) != kw {
			t.Errorf("LineKeyword(%q): keyword %q is not lowercase", line, kw)
		}
		if !strings.Contains(text, rest) {
			t.Errorf("LineKeyword(%q): rest %q is not in the line", line, rest)
		}
		if kw == "" && rest != "" {
			t.Errorf("LineKeyword(%q) = %q, %q: a rest without a keyword", line, kw, rest)
		}
		if strings.HasPrefix(kw, "#") {
			t.Errorf("LineKeyword(%q): a comment is keyword %q", line, kw)
		}
		if Known(kw) {
			if _, ok := keywords[kw]; !ok {
				t.Errorf("Known(%q) but ssh does not know it", kw)
			}
		}
		_, known := keywords[LowerASCII(line)]
		if Known(line) != known || (Used(line) && !known) {
			t.Errorf("Known(%q) = %v, Used = %v; ssh knows it: %v", line, Known(line), Used(line), known)
		}
	})
}

// matchPatternRef is OpenSSH's match_pattern as written (recursive, in
// time exponential in the number of stars): FuzzMatchPattern's oracle.
func matchPatternRef(s, pattern string) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		switch pattern[0] {
		case '*':
			pattern = strings.TrimLeft(pattern, "*")
			if pattern == "" {
				return true
			}
			for i := 0; i < len(s); i++ {
				if matchPatternRef(s[i:], pattern) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		s, pattern = s[1:], pattern[1:]
	}
}

// FuzzMatchPattern checks that matchPattern (and so Host and Match
// patterns) returns within the bound for any pattern, and matches as
// OpenSSH's match_pattern wherever that takes reasonable time.
func FuzzMatchPattern(f *testing.F) {
	for _, s := range []struct{ s, p string }{
		{"web", "web"}, {"web", "w*"}, {"web", "*b"}, {"web", "w?b"}, {"web", "*"}, {"", "*"}, {"", ""},
		{"web.corp", "*.corp"}, {"abc", "a*c*"}, {"abc", "*?*?*?*"}, {"ab", "*?*?*?*"}, {"aaaa", "*a*a*a*a*a"},
		{"mississippi", "*sip*"}, {"mississippi", "m*iss*ppi"}, {"x", "**x**"}, {"abcabd", "*abd"}, {"abcabd", "*ab?"},
	} {
		f.Add(s.s, s.p)
	}
	f.Fuzz(func(t *testing.T, s, pattern string) {
		var got bool
		testutil.Within(t, fuzzTimeout, "matchPattern", func() { got = MatchPattern(s, pattern) })
		if strings.Count(pattern, "*") > 6 || len(s) > 64 {
			return // the oracle may take too long
		}
		if want := matchPatternRef(s, pattern); got != want {
			t.Errorf("MatchPattern(%q, %q) = %v; OpenSSH's match_pattern: %v", s, pattern, got, want)
		}
	})
}

// TestNoUnicodeFolding: ssh lowercases keywords, values and Match
// criteria as tolower in the C locale, so a keyword or value with a
// non-ASCII letter that Unicode would fold to ASCII ("İ", the Kelvin sign
// "K") is not the ASCII one: ssh 9.2 refuses each of these lines
// (FuzzLineKeyword found the keyword's folding).
func TestNoUnicodeFolding(t *testing.T) {
	for _, line := range []string{
		"HostKeyAl\u0130as foo", "\u0130dentityFile /x", "\u212Aexalgorithms x", "StrictHostKeyChecking as\u212A",
		"AddressFamily \u0130net", "AddressFamily \u0130net6", "ControlMaster autoas\u212A", "Match or\u0130ginalhost h",
		"Match localnetwor\u212A 10.0.0.0/8",
	} {
		if _, err := resolveText(t, line+"\n", "h", nil); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
	for _, k := range []string{"\u0130nclude", "HostKeyAl\u0130as", "\u212Aexalgorithms"} {
		if Known(k) || Used(k) {
			t.Errorf("Known(%q) = %v, Used = %v; ssh does not know it", k, Known(k), Used(k))
		}
	}
}
