package sshdial

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	osuser "os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kevinburke/ssh_config"
)

// hop is one SSH server to connect to, as resolved from a destination and the config file.
type hop struct {
	Alias            string   // the host as typed (before HostName applies); used for %n and messages
	HostName         string   // what to connect to (HostName, or the host as typed), lowercased unless an address; %h
	Port             int      // Port, or the destination's, or 22
	User             string   // destination's user, else config User, else the local user name
	IdentityFiles    []string // expanded paths, config order; nil when the config names none; empty (not nil) for "IdentityFile none"
	CertificateFiles []string // expanded
	IdentitiesOnly   bool
	IdentityAgent    string   // "" = $SSH_AUTH_SOCK; "none" = no agent; else a path (expanded)
	ProxyJump        []string // hops before this one, each a destination as typed; nil for none ("none" too)
	ProxyCommand     string   // tokens expanded; "" for none; used when this hop is the first (see connectHop)

	UserKnownHostsFiles   []string      // expanded; default ~/.ssh/known_hosts ~/.ssh/known_hosts2; empty (not nil) for "none"
	GlobalKnownHostsFiles []string      // default /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2; empty (not nil) for "none"
	HostKeyAlias          string        // "" when unset; lowercased as ssh(1) does
	StrictHostKeyChecking string        // "yes", "accept-new", "no" or "ask" (true/false/off are normalised); default "ask"
	ServerAliveInterval   time.Duration // 0 when unset
	ServerAliveCountMax   int           // default 3
	ConnectTimeout        time.Duration // 0 when unset
	Network               string        // AddressFamily as the network to dial: "tcp" (any, the default), "tcp4" (inet) or "tcp6" (inet6)
}

// parseDestination splits [user@]host[:port], [user@][v6addr]:port and ssh://[user@]host[:port]
// (no path, query or fragment; a password in the URL is refused). port is 0 when not given.
//
// As OpenSSH does, the user is everything before the last '@' (a user name may hold '@'),
// except in an ssh:// URL, where an '@' in the user must be percent-encoded. A bare IPv6
// address (more than one ':' and no brackets) is a host without a port.
func parseDestination(dest string) (user, host string, port int, err error) {
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
		if port, err = parsePortNumber(portStr); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
		}
	}
	if err := checkHostName(host); err != nil {
		return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
	}
	if user != "" {
		if err := checkRemoteUser(user); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: destination %q: %w", dest, err)
		}
	}
	return user, host, port, nil
}

// parseSSHURL parses ssh://[user[;params]@]host[:port][/] as OpenSSH's parse_uri does,
// refusing a password, a path, a query and a fragment.
func parseSSHURL(dest string) (user, host string, port int, err error) {
	// The URL is never quoted in an error in full: it might hold a password.
	u, perr := url.Parse("ssh://" + dest[6:])
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
	if p := u.Port(); p != "" {
		if port, err = parsePortNumber(p); err != nil {
			return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: %w", safe.Redacted(), err)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: empty port after ':'", safe.Redacted())
	}
	if err := checkHostName(host); err != nil {
		return "", "", 0, fmt.Errorf("sshdial: ssh:// destination %q: %w", safe.Redacted(), err)
	}
	if user != "" {
		if err := checkRemoteUser(user); err != nil {
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

// parsePortNumber parses a TCP port, 1 to 65535.
func parsePortNumber(s string) (int, error) {
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is out of range 1-65535", s)
	}
	return n, nil
}

// checkHostName refuses what OpenSSH's ssh_valid_hostname refuses, and brackets.
func checkHostName(h string) error {
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

// checkRemoteUser refuses what OpenSSH's ssh_valid_ruser refuses.
func checkRemoteUser(u string) error {
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

// hopSettings collects the values read from the config file: for single values, the first
// obtained wins (set* says one was obtained).
type hopSettings struct {
	hostName, user, identityAgent, hostKeyAlias, strict string
	addressFamily                                       string // "tcp", "tcp4" or "tcp6"
	setAddressFamily                                    bool
	port, aliveCountMax                                 int
	aliveInterval, connectTimeout                       time.Duration
	identitiesOnly                                      bool

	setHostName, setUser, setIdentityAgent, setHostKeyAlias, setStrict bool
	setPort, setAliveCountMax, setAliveInterval, setConnectTimeout     bool
	setIdentitiesOnly                                                  bool

	identityFiles, certificateFiles        []string // accumulated, unexpanded
	userKnownHosts, globalKnownHosts       []string // the first line that names any wins
	setUserKnownHosts, setGlobalKnownHosts bool

	proxySet     bool     // ProxyJump or ProxyCommand obtained (the first of them wins)
	proxyJump    []string // nil for none
	proxyCommand string   // "" unless a ProxyCommand other than none won
}

// configWalker evaluates a parsed config for one destination as ssh(1) reads it.
type configWalker struct {
	alias string // the host as typed, for Host patterns
	home  string
	s     hopSettings
}

// maxIncludeDepth bounds nested Include directives, as OpenSSH's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// resolveHop resolves a destination with the config file at path ("" reads none; a missing file
// at the default path ~/.ssh/config is no error; a missing file named explicitly is). home is the
// user's home directory for ~ and %d; localUser for %u and the default User.
//
// Host blocks match the host as typed (case-sensitively, with * ? and ! as ssh_config(5)
// says); "Match all" and "Match host" (matched against HostName, case-insensitively) are
// evaluated; other Match criteria are refused by the parser with an error. For ssh(1) parity,
// home should be the home directory of the user's passwd entry, which OpenSSH uses for ~ and
// %d even when $HOME differs.
func resolveHop(dest, path, home, localUser string) (*hop, error) {
	return resolveHopWith(dest, path, home, localUser, false)
}

// resolveHopWith is resolveHop; with ignoreProxyCommand, the config's
// ProxyCommand is not read (WithProxyCommand replaces it).
func resolveHopWith(dest, path, home, localUser string, ignoreProxyCommand bool) (*hop, error) {
	destUser, host, destPort, err := parseDestination(dest)
	if err != nil {
		return nil, err
	}
	w := &configWalker{alias: host, home: home}
	if path != "" {
		cfgPath := path
		if strings.HasPrefix(cfgPath, "~") {
			if cfgPath, err = expandTilde(cfgPath, home); err != nil {
				return nil, fmt.Errorf("sshdial: config file %s: %w", path, err)
			}
		}
		cfg, err := decodeConfigFile(cfgPath)
		switch {
		case errors.Is(err, fs.ErrNotExist) && filepath.Clean(cfgPath) == filepath.Join(home, ".ssh", "config"):
			// No ~/.ssh/config: ssh(1) runs with defaults.
		case err != nil:
			return nil, err
		default:
			if err := w.walk(cfg, cfgPath, true, 0); err != nil {
				return nil, err
			}
		}
	}
	s := &w.s

	h := &hop{
		Alias:                 host,
		HostName:              host,
		Port:                  22,
		IdentitiesOnly:        s.identitiesOnly,
		ProxyJump:             s.proxyJump,
		StrictHostKeyChecking: "ask",
		ServerAliveInterval:   s.aliveInterval,
		ServerAliveCountMax:   3,
		ConnectTimeout:        s.connectTimeout,
		Network:               "tcp",
	}
	if s.setAddressFamily {
		h.Network = s.addressFamily
	}
	if s.setHostName {
		hn, err := expandPercent(s.hostName, map[byte]string{'h': host})
		if err != nil {
			return nil, fmt.Errorf("sshdial: %s: HostName %q: %w", path, s.hostName, err)
		}
		if hn == "" || strings.IndexFunc(hn, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return nil, fmt.Errorf("sshdial: %s: HostName %q for %s is empty or contains a space or control character", path, hn, host)
		}
		h.HostName = hn
	}
	if _, err := netip.ParseAddr(h.HostName); err != nil {
		h.HostName = lowerASCII(h.HostName) // ssh(1) lowercases names (in ASCII), not addresses
	}
	switch {
	case destPort != 0:
		h.Port = destPort
	case s.setPort:
		h.Port = s.port
	}
	if s.setAliveCountMax {
		h.ServerAliveCountMax = s.aliveCountMax
	}
	if s.setStrict {
		h.StrictHostKeyChecking = s.strict
	}
	if s.setHostKeyAlias {
		h.HostKeyAlias = lowerASCII(s.hostKeyAlias)
	}

	tokens := map[byte]string{
		'%': "%",
		'd': home,
		'h': h.HostName,
		'i': strconv.Itoa(os.Getuid()),
		'j': jumpHostToken(s),
		'k': host,
		'n': host,
		'p': strconv.Itoa(h.Port),
		'u': localUser,
	}
	if h.HostKeyAlias != "" {
		tokens['k'] = h.HostKeyAlias
	}
	if hn, err := os.Hostname(); err == nil {
		tokens['l'] = hn
		tokens['L'], _, _ = strings.Cut(hn, ".")
	}

	switch {
	case destUser != "":
		h.User = destUser
	case s.setUser:
		u, err := expandValue(s.user, tokens, false) // User takes no %r and no %C
		if err != nil {
			return nil, fmt.Errorf("sshdial: %s: User %q: %w", path, s.user, err)
		}
		if u != s.user {
			if err := checkRemoteUser(u); err != nil {
				return nil, fmt.Errorf("sshdial: %s: User %q: %w", path, s.user, err)
			}
		}
		h.User = u
	default:
		h.User = localUser
	}
	if h.User == "" {
		return nil, fmt.Errorf("sshdial: no user name for %s: none in the destination or config, and the local user name is unknown", host)
	}
	tokens['r'] = h.User
	if s.proxyCommand != "" && !ignoreProxyCommand {
		if err := h.setProxyCommand(s.proxyCommand); err != nil {
			return nil, fmt.Errorf("sshdial: %s: ProxyCommand: %w", path, err) // the line may hold secrets
		}
	}
	sum := sha1.Sum([]byte(tokens['l'] + h.HostName + tokens['p'] + h.User + tokens['j']))
	tokens['C'] = hex.EncodeToString(sum[:])

	expandAll := func(keyword string, in []string) ([]string, error) {
		var out []string
		for _, f := range in {
			if strings.EqualFold(f, "none") {
				continue
			}
			p, err := expandValue(f, tokens, true)
			if err != nil {
				return nil, fmt.Errorf("sshdial: %s: %s %q: %w", path, keyword, f, err)
			}
			out = append(out, p)
		}
		if out == nil && in != nil {
			out = []string{}
		}
		return out, nil
	}
	if h.IdentityFiles, err = expandAll("IdentityFile", s.identityFiles); err != nil {
		return nil, err
	}
	if h.CertificateFiles, err = expandAll("CertificateFile", s.certificateFiles); err != nil {
		return nil, err
	}
	if s.setUserKnownHosts {
		if h.UserKnownHostsFiles, err = expandAll("UserKnownHostsFile", s.userKnownHosts); err != nil {
			return nil, err
		}
	} else {
		h.UserKnownHostsFiles = []string{
			filepath.Join(home, ".ssh", "known_hosts"),
			filepath.Join(home, ".ssh", "known_hosts2"),
		}
	}
	if s.setGlobalKnownHosts {
		// ssh(1) expands neither ~ nor tokens in GlobalKnownHostsFile.
		h.GlobalKnownHostsFiles = []string{}
		for _, f := range s.globalKnownHosts {
			if !strings.EqualFold(f, "none") {
				h.GlobalKnownHostsFiles = append(h.GlobalKnownHostsFiles, f)
			}
		}
	} else {
		h.GlobalKnownHostsFiles = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	if s.setIdentityAgent {
		switch a := s.identityAgent; {
		case strings.EqualFold(a, "none"):
			h.IdentityAgent = "none"
		case a == "SSH_AUTH_SOCK":
			h.IdentityAgent = ""
		case strings.HasPrefix(a, "$") && !strings.HasPrefix(a, "${"):
			// The legacy form names an environment variable holding the socket path.
			if h.IdentityAgent = os.Getenv(a[1:]); h.IdentityAgent == "" {
				h.IdentityAgent = "none"
			}
		default:
			if h.IdentityAgent, err = expandValue(a, tokens, true); err != nil {
				return nil, fmt.Errorf("sshdial: %s: IdentityAgent %q: %w", path, a, err)
			}
		}
	}
	return h, nil
}

// addressFamilies maps AddressFamily's values to the network dialed.
var addressFamilies = map[string]string{"any": "tcp", "inet": "tcp4", "inet6": "tcp6"}

// setProxyCommand sets h.ProxyCommand to command with its tokens expanded:
// ProxyCommand takes %%, %h, %n, %p and %r (the shell expands the
// environment); "none" is none.
func (h *hop) setProxyCommand(command string) error {
	if strings.EqualFold(command, "none") {
		h.ProxyCommand = ""
		return nil
	}
	pc, err := expandPercent(command, map[byte]string{'h': h.HostName, 'n': h.Alias, 'p': strconv.Itoa(h.Port), 'r': h.User})
	if err != nil {
		return err
	}
	h.ProxyCommand = pc
	return nil
}

// jumpHostToken is %j: the host of the ProxyJump hop nearest the destination ("none" for
// ProxyJump none, "" when unset), as ssh(1) keeps it.
func jumpHostToken(s *hopSettings) string {
	if !s.proxySet || s.proxyCommand != "" {
		return ""
	}
	if s.proxyJump == nil {
		return "none"
	}
	_, host, _, err := parseDestination(s.proxyJump[len(s.proxyJump)-1])
	if err != nil {
		return ""
	}
	return host
}

// decodeConfigFile reads and parses one config file. The parser panics on some malformed
// input; that becomes an error.
func decodeConfigFile(path string) (cfg *ssh_config.Config, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sshdial: config file %s does not exist: %w", path, err)
		}
		return nil, fmt.Errorf("sshdial: reading config file: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("sshdial: config file %s: cannot parse it: %v", path, r)
		}
	}()
	cfg, err = ssh_config.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("sshdial: config file %s: %w", path, err)
	}
	return cfg, nil
}

// walk reads cfg's blocks in order; active says whether the enclosing context applies
// (false for an Include in a block that does not match: its lines are checked, never used).
func (w *configWalker) walk(cfg *ssh_config.Config, file string, active bool, depth int) error {
	for i, h := range cfg.Hosts {
		blockActive := active
		if i > 0 { // Hosts[0] is the implicit block before the first Host or Match line
			m, err := w.blockMatches(h, file)
			if err != nil {
				return err
			}
			blockActive = active && m
		}
		for _, n := range h.Nodes {
			switch n := n.(type) {
			case *ssh_config.KV:
				if err := w.apply(n, file, blockActive); err != nil {
					return err
				}
			case *ssh_config.Include:
				if err := w.include(n, file, blockActive, depth); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// blockMatches evaluates a Host or Match line for the destination.
func (w *configWalker) blockMatches(h *ssh_config.Host, file string) (bool, error) {
	header, _, _ := strings.Cut(strings.TrimSpace(h.String()), "\n")
	fields := strings.Fields(strings.ReplaceAll(header, "=", " "))
	if len(fields) > 0 && strings.EqualFold(fields[0], "match") {
		// The parser accepts only "Match all" and "Match host PATTERNS".
		if len(fields) >= 2 && strings.EqualFold(fields[1], "all") {
			return true, nil
		}
		if len(fields) >= 3 && strings.EqualFold(fields[1], "host") {
			// Match host tests HostName (as far as it is known, %h expanded),
			// case-insensitively, against a comma-separated pattern list.
			name := w.alias
			if w.s.setHostName {
				if hn, err := expandPercent(w.s.hostName, map[byte]string{'h': w.alias}); err == nil {
					name = hn
				}
			}
			return matchPatternList(strings.ToLower(name), strings.ToLower(strings.Join(fields[2:], ","))), nil
		}
		return false, fmt.Errorf("sshdial: config file %s: unsupported line %q", file, header)
	}
	matched := false
	for _, p := range h.Patterns {
		for _, pat := range strings.Fields(p.String()) {
			neg := strings.HasPrefix(pat, "!")
			if matchPattern(w.alias, strings.TrimPrefix(pat, "!")) {
				if neg {
					return false, nil // a negated match excludes the block
				}
				matched = true
			}
		}
	}
	return matched, nil
}

// include reads the files an Include line names (globs, sorted; relative paths are in ~/.ssh).
func (w *configWalker) include(inc *ssh_config.Include, file string, active bool, depth int) error {
	if depth >= maxIncludeDepth {
		return fmt.Errorf("sshdial: config file %s: Include nested too deeply", file)
	}
	line := strings.TrimSpace(inc.String())
	if i := strings.Index(line, " #"); i >= 0 && inc.Comment != "" {
		line = line[:i]
	}
	args, err := splitConfigArgs(strings.TrimLeft(line[len("Include"):], " ="))
	if err != nil {
		return fmt.Errorf("sshdial: config file %s: Include: %w", file, err)
	}
	for _, a := range args {
		pattern := a
		switch {
		case strings.HasPrefix(a, "~"):
			if pattern, err = expandTilde(a, w.home); err != nil {
				return fmt.Errorf("sshdial: config file %s: Include %s: %w", file, a, err)
			}
		case !filepath.IsAbs(a):
			pattern = filepath.Join(w.home, ".ssh", a)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("sshdial: config file %s: Include %s: %w", file, a, err)
		}
		sort.Strings(matches)
		for _, m := range matches {
			cfg, err := decodeConfigFile(m)
			if err != nil {
				return err
			}
			if err := w.walk(cfg, m, active, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// kvArgs returns the arguments of a config line, split and unquoted as OpenSSH's argv_split
// does.
func kvArgs(kv *ssh_config.KV) ([]string, error) {
	return splitConfigArgs(kvRaw(kv))
}

// kvRaw returns the value of kv as written, quotes and all, as ssh(1) takes
// ProxyCommand's.
func kvRaw(kv *ssh_config.KV) string {
	raw := kv.Value
	// KV.Value strips only quotes around the whole value; split the text as written.
	s := strings.TrimLeft(kv.String(), " \t")
	if strings.HasPrefix(s, kv.Key) {
		s = strings.TrimLeft(s[len(kv.Key):], " \t=")
		if kv.Comment != "" {
			if i := strings.LastIndex(s, "#"+kv.Comment); i >= 0 {
				s = s[:i]
			}
		}
		raw = strings.TrimSpace(s)
	}
	return raw
}

// splitConfigArgs splits s at spaces; double or single quotes group, and a backslash escapes
// a quote, a backslash, or (outside quotes) a space.
func splitConfigArgs(s string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return args, nil
		}
		var b strings.Builder
		var quote byte
	arg:
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				b.WriteByte(s[i])
			case quote == 0 && (c == ' ' || c == '\t'):
				break arg
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			default:
				b.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		args = append(args, b.String())
	}
}

// apply reads one keyword line; its value is checked even when the block does not apply.
func (w *configWalker) apply(kv *ssh_config.KV, file string, active bool) error {
	key := strings.ToLower(kv.Key)
	args, err := kvArgs(kv)
	if err != nil {
		return fmt.Errorf("sshdial: config file %s line %d: %s: %w", file, kv.Pos().Line, kv.Key, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("sshdial: config file %s line %d: %s: %s", file, kv.Pos().Line, kv.Key, fmt.Sprintf(format, a...))
	}
	one := func() (string, error) {
		if len(args) == 0 || args[0] == "" {
			return "", bad("missing argument")
		}
		if len(args) > 1 {
			return "", bad("unexpected %q after the argument", strings.Join(args[1:], " "))
		}
		return args[0], nil
	}
	s := &w.s
	str := func(dst *string, set *bool) error {
		v, err := one()
		if err != nil {
			return err
		}
		if active && !*set {
			*dst, *set = v, true
		}
		return nil
	}
	dur := func(dst *time.Duration, set *bool) error {
		v, err := one()
		if err != nil {
			return err
		}
		if v == "none" {
			return nil // as in ssh(1), "none" leaves the value unset for later lines
		}
		secs, ok := parseConfigTime(v)
		if !ok {
			return bad("invalid time value %q (seconds, or a time like 1m30s)", v)
		}
		if active && !*set {
			*dst, *set = time.Duration(secs)*time.Second, true
		}
		return nil
	}
	list := func(dst *[]string, set *bool) error {
		if len(args) == 0 {
			return bad("missing argument")
		}
		for i, a := range args {
			if a == "" {
				return bad("empty argument")
			}
			if strings.EqualFold(a, "none") && (i > 0 || len(args) > 1) {
				return bad("\"none\" must appear alone")
			}
		}
		if active && !*set {
			*dst, *set = append([]string(nil), args...), true
		}
		return nil
	}
	switch key {
	case "hostname":
		return str(&s.hostName, &s.setHostName)
	case "user":
		return str(&s.user, &s.setUser)
	case "hostkeyalias":
		return str(&s.hostKeyAlias, &s.setHostKeyAlias)
	case "identityagent":
		return str(&s.identityAgent, &s.setIdentityAgent)
	case "port":
		v, err := one()
		if err != nil {
			return err
		}
		p, err := parsePortNumber(v)
		if err != nil {
			return bad("%v", err)
		}
		if active && !s.setPort {
			s.port, s.setPort = p, true
		}
	case "identityfile", "certificatefile":
		v, err := one()
		if err != nil {
			return err
		}
		if active {
			if key == "identityfile" {
				s.identityFiles = append(s.identityFiles, v)
			} else {
				s.certificateFiles = append(s.certificateFiles, v)
			}
		}
	case "identitiesonly":
		v, err := one()
		if err != nil {
			return err
		}
		var b bool
		switch strings.ToLower(v) {
		case "yes", "true":
			b = true
		case "no", "false":
		default:
			return bad("unsupported value %q (yes or no)", v)
		}
		if active && !s.setIdentitiesOnly {
			s.identitiesOnly, s.setIdentitiesOnly = b, true
		}
	case "stricthostkeychecking":
		v, err := one()
		if err != nil {
			return err
		}
		var norm string
		switch strings.ToLower(v) {
		case "yes", "true":
			norm = "yes"
		case "no", "false", "off":
			norm = "no"
		case "ask":
			norm = "ask"
		case "accept-new":
			norm = "accept-new"
		default:
			return bad("unsupported value %q (yes, accept-new, no, off or ask)", v)
		}
		if active && !s.setStrict {
			s.strict, s.setStrict = norm, true
		}
	case "addressfamily":
		v, err := one()
		if err != nil {
			return err
		}
		network, ok := addressFamilies[strings.ToLower(v)]
		if !ok {
			return bad("unsupported value %q (any, inet or inet6)", v)
		}
		if active && !s.setAddressFamily {
			s.addressFamily, s.setAddressFamily = network, true
		}
	case "serveraliveinterval":
		return dur(&s.aliveInterval, &s.setAliveInterval)
	case "connecttimeout":
		return dur(&s.connectTimeout, &s.setConnectTimeout)
	case "serveralivecountmax":
		v, err := one()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("%q is not a non-negative integer", v)
		}
		if active && !s.setAliveCountMax {
			s.aliveCountMax, s.setAliveCountMax = n, true
		}
	case "userknownhostsfile":
		return list(&s.userKnownHosts, &s.setUserKnownHosts)
	case "globalknownhostsfile":
		return list(&s.globalKnownHosts, &s.setGlobalKnownHosts)
	case "proxyjump":
		if len(args) == 0 {
			return bad("missing argument")
		}
		v := strings.Join(args, " ")
		var hops []string
		if !strings.EqualFold(v, "none") {
			for _, j := range strings.Split(v, ",") {
				j = strings.TrimSpace(j)
				if _, _, _, err := parseDestination(j); err != nil {
					return bad("invalid ProxyJump %q: %v", v, err)
				}
				hops = append(hops, j)
			}
		}
		if active && !s.proxySet {
			s.proxySet, s.proxyJump = true, hops
		}
	case "proxycommand":
		if len(args) == 0 {
			return bad("missing argument")
		}
		if active && !s.proxySet {
			s.proxySet = true
			// The command line as written: the shell splits it.
			if v := kvRaw(kv); !strings.EqualFold(v, "none") {
				s.proxyCommand = v
			}
		}
	}
	return nil
}

// parseConfigTime parses a time as OpenSSH's convtime: seconds, or a sequence of numbers each
// with a unit s, m, h, d or w (1m30s); whole seconds.
func parseConfigTime(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var total float64
	seenSeconds := false
	for s != "" {
		n := 0
		for n < len(s) && (s[n] >= '0' && s[n] <= '9' || s[n] == '.') {
			n++
		}
		if n == 0 {
			return 0, false
		}
		num := s[:n]
		val, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, false
		}
		s = s[n:]
		mult := 1.0
		unit := byte('s')
		if s != "" {
			unit = s[0] | 0x20 // lowercase
			s = s[1:]
		}
		switch unit {
		case 's':
			if seenSeconds {
				return 0, false
			}
			seenSeconds = true
		case 'm':
			mult = 60
		case 'h':
			mult = 3600
		case 'd':
			mult = 86400
		case 'w':
			mult = 604800
		default:
			return 0, false
		}
		if strings.Contains(num, ".") && (mult > 1 || num[len(num)-1] == '.') {
			return 0, false
		}
		total += val * mult
	}
	if total > 1<<31-1 {
		return 0, false
	}
	return int64(total), true
}

// matchPattern matches s against an ssh_config(5) pattern: * is any run of characters, ?
// exactly one; all else literal (case-sensitive).
func matchPattern(s, pattern string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			pattern = strings.TrimLeft(pattern, "*")
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(s[i:], pattern) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			s, pattern = s[1:], pattern[1:] // one byte, as OpenSSH's match_pattern
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			s, pattern = s[1:], pattern[1:]
		}
	}
	return s == ""
}

// matchPatternList matches s against a comma-separated list of patterns, each possibly
// negated with !; a negated match wins.
func matchPatternList(s, list string) bool {
	got := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if matchPattern(s, strings.TrimPrefix(p, "!")) {
			if neg {
				return false
			}
			got = true
		}
	}
	return got
}

// expandValue expands a leading ~ (when tilde) then %x tokens and ${VAR} environment
// variables, as ssh(1) does for IdentityFile, UserKnownHostsFile and the like.
func expandValue(v string, tokens map[byte]string, tilde bool) (string, error) {
	return expandTokens(v, tokens, tilde, true)
}

// expandTokens expands a leading ~ (when tilde), %x tokens, and ${VAR} (when env).
func expandTokens(v string, tokens map[byte]string, tilde, env bool) (string, error) {
	if tilde && strings.HasPrefix(v, "~") {
		var err error
		if v, err = expandTilde(v, tokens['d']); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '%':
			if i+1 >= len(v) {
				return "", errors.New("'%' at the end")
			}
			i++
			t, ok := tokens[v[i]]
			if !ok {
				return "", fmt.Errorf("unknown token %%%c", v[i])
			}
			b.WriteString(t)
		case env && v[i] == '$' && i+1 < len(v) && v[i+1] == '{':
			end := strings.IndexByte(v[i:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${")
			}
			name := v[i+2 : i+end]
			val, ok := os.LookupEnv(name)
			if name == "" || !ok {
				return "", fmt.Errorf("environment variable %q is not set", name)
			}
			b.WriteString(val)
			i += end
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String(), nil
}

// expandPercent expands %x tokens only ('%' is always "%").
func expandPercent(v string, tokens map[byte]string) (string, error) {
	t := map[byte]string{'%': "%"}
	for k, x := range tokens {
		t[k] = x
	}
	return expandTokens(v, t, false, false)
}

// expandTilde expands ~, ~/path and ~user/path at the start of p.
func expandTilde(p, home string) (string, error) {
	rest := p[1:]
	name, path, _ := strings.Cut(rest, "/")
	dir := home
	if name != "" {
		u, err := osuser.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("no such user %q for ~", name)
		}
		dir = u.HomeDir
	}
	if dir == "" {
		return "", errors.New("home directory unknown for ~")
	}
	path = strings.TrimLeft(path, "/")
	if path == "" {
		return dir, nil
	}
	return filepath.Join(dir, filepath.FromSlash(path)), nil
}
