package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sshdial/sshdial/internal/sshconfig"
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
	KeepaliveOff          bool          // ServerAliveInterval 0 was given: no keepalives, as in ssh
	ControlPath           string        // expanded; "" for none (read and printed; the mux client uses it)
	ControlMaster         string        // "no" (the default), "yes", "auto", "ask" or "autoask"
	SkippedExec           []string      // Match lines ("file line N") not matched because WithMatchExec(false) kept their command from running

	PreferredAuthentications string // as written ("keyboard-interactive,password"); "" for ssh's order
	NumberOfPasswordPrompts  int    // 0: the default (3); -1: none (ssh_config's 0, password and keyboard-interactive off)

	tokens sshconfig.Tokens // the % tokens of the connection, for ProxyCommand
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

// systemConfigPath is the system's ssh_config, read after the user's unless
// WithConfigFile is given; tests set it ("" reads none).
var systemConfigPath = "/etc/ssh/ssh_config"

// configSource says which config Connect reads and how: what its options
// set, and the local user.
type configSource struct {
	ctx        context.Context // bounds Match exec commands and lookups
	file       *string         // WithConfigFile: the only file ("" or "none": no file); nil: the user's and the system's
	system     *string         // WithSystemConfigFile; nil: systemConfigPath
	home       string          // the local user's home directory, for ~ and %d
	localUser  string          // %u and the default user
	lines      []string        // WithConfigLines: read first, for the destination only
	noExec     bool            // WithMatchExec(false)
	ignoreProx bool            // WithProxyCommand: the config's ProxyCommand is not used
	loginUser  string          // WithUser: the destination's user, over everything
	loginPort  int             // WithPort: the destination's port, over everything
}

// options returns the reader's options for dest (user and port from the
// destination); lines says whether the command-line lines apply (to the
// destination, not to jump hosts, as ssh passes no -o to ProxyJump's).
func (src *configSource) options(destUser string, destPort int, lines bool) sshconfig.Options {
	o := sshconfig.Options{
		Home:      src.home,
		LocalUser: src.localUser,
		User:      destUser,
		Port:      destPort,
		NoExec:    src.noExec,
		Context:   src.ctx,
	}
	switch {
	case src.file != nil:
		o.ConfigFile = *src.file
		if o.ConfigFile == "" {
			o.ConfigFile = "none"
		}
		if strings.HasPrefix(o.ConfigFile, "~") {
			if p, err := sshconfig.ExpandTilde(o.ConfigFile, src.home); err == nil {
				o.ConfigFile = p
			}
		}
	default:
		if src.home != "" {
			o.UserConfig = filepath.Join(src.home, ".ssh", "config")
		}
		o.SystemConfig = systemConfigPath
		if src.system != nil {
			o.SystemConfig = *src.system
		}
	}
	if lines {
		o.CommandLine = src.lines
		o.LoginUser, o.LoginPort = src.loginUser, src.loginPort
	}
	return o
}

// resolveConfig evaluates the config for dest as ssh -G does.
func (src *configSource) resolveConfig(dest string, lines bool) (*sshconfig.Config, error) {
	destUser, host, destPort, err := parseDestination(dest)
	if err != nil {
		return nil, err
	}
	c, err := sshconfig.Resolve(host, src.options(destUser, destPort, lines))
	if err != nil {
		return nil, &configError{msg: "sshdial: " + strings.TrimPrefix(err.Error(), "sshconfig: "), err: err}
	}
	return c, nil
}

// resolveHop resolves a destination with the config file at path, as the
// tests of this file use it: "" reads none; the default path
// (home/.ssh/config) is the user's file, which may be missing; any other
// path is the only file (as -F). No system file is read.
func resolveHop(dest, path, home, localUser string) (*hop, error) {
	src := &configSource{home: home, localUser: localUser, system: new(string)}
	if filepath.Clean(path) != filepath.Join(home, ".ssh", "config") {
		src.file = &path
	}
	return src.hop(dest, true)
}

// hop resolves dest to a hop: the config evaluated as ssh(1) does, with the
// values ssh expands expanded.
func (src *configSource) hop(dest string, lines bool) (*hop, error) {
	c, err := src.resolveConfig(dest, lines)
	if err != nil {
		return nil, err
	}
	return hopFromConfig(c, src.ignoreProx)
}

// hopFromConfig makes a hop of a resolved config.
func hopFromConfig(c *sshconfig.Config, ignoreProxyCommand bool) (*hop, error) {
	h := &hop{
		Alias:                 c.Host,
		HostName:              c.HostName,
		Port:                  c.Port,
		User:                  c.User,
		IdentitiesOnly:        c.IdentitiesOnly,
		UserKnownHostsFiles:   c.UserKnownHostsFiles,
		GlobalKnownHostsFiles: c.GlobalKnownHostsFiles,
		HostKeyAlias:          c.HostKeyAlias,
		ServerAliveInterval:   time.Duration(c.ServerAliveInterval) * time.Second,
		KeepaliveOff:          c.IsSet("serveraliveinterval") && c.ServerAliveInterval == 0,
		ServerAliveCountMax:   c.ServerAliveCountMax,
		Network:               addressFamilies[c.AddressFamily],
		ControlPath:           c.ControlPath,
		ControlMaster:         c.ControlMaster,
		SkippedExec:           c.SkippedExec,
		tokens:                c.Tokens,

		PreferredAuthentications: c.PreferredAuthentications,
		NumberOfPasswordPrompts:  c.NumberOfPasswordPrompts,
	}
	switch {
	case !c.IsSet("numberofpasswordprompts"):
		h.NumberOfPasswordPrompts = 0 // the default
	case h.NumberOfPasswordPrompts == 0:
		h.NumberOfPasswordPrompts = -1 // ssh_config's 0: none; the hop's 0 is the default
	}
	switch h.ControlMaster {
	case "true":
		h.ControlMaster = "yes"
	case "false":
		h.ControlMaster = "no"
	}
	if h.HostName == "" || strings.IndexFunc(h.HostName, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return nil, fmt.Errorf("sshdial: HostName %q for %s is empty or contains a space or control character", h.HostName, c.Host)
	}
	if c.ConnectTimeout > 0 {
		h.ConnectTimeout = time.Duration(c.ConnectTimeout) * time.Second
	}
	h.StrictHostKeyChecking = map[string]string{"true": "yes", "false": "no"}[c.StrictHostKeyChecking]
	if h.StrictHostKeyChecking == "" {
		h.StrictHostKeyChecking = c.StrictHostKeyChecking
	}
	if h.User == "" {
		return nil, fmt.Errorf("sshdial: no user name for %s: none in the destination or config, and the local user name is unknown", c.Host)
	}
	if c.IsSet("user") {
		if err := checkRemoteUser(h.User); err != nil {
			return nil, fmt.Errorf("sshdial: User %q: %w", h.User, err)
		}
	}
	expandAll := func(keyword string, in []string) ([]string, error) {
		var out []string
		for _, f := range in {
			if strings.EqualFold(f, "none") {
				continue
			}
			p, err := c.Tokens.ExpandPath(f)
			if err != nil {
				return nil, fmt.Errorf("sshdial: %s %q: %w", keyword, f, err)
			}
			out = append(out, p)
		}
		if out == nil && in != nil {
			out = []string{}
		}
		return out, nil
	}
	var err error
	if !c.IdentityFilesDefault {
		if h.IdentityFiles, err = expandAll("IdentityFile", c.IdentityFiles); err != nil {
			return nil, err
		}
	}
	if h.CertificateFiles, err = expandAll("CertificateFile", c.CertificateFiles); err != nil {
		return nil, err
	}
	if c.ProxyJump != "" {
		for _, j := range strings.Split(c.ProxyJump, ",") {
			if _, _, _, err := parseDestination(j); err != nil {
				return nil, fmt.Errorf("sshdial: invalid ProxyJump %q: %w", c.ProxyJump, err)
			}
			h.ProxyJump = append(h.ProxyJump, j)
		}
	}
	if c.ProxyCommand != "" && !ignoreProxyCommand {
		if err := h.setProxyCommand(c.ProxyCommand); err != nil {
			return nil, fmt.Errorf("sshdial: ProxyCommand: %w", err) // the line may hold secrets
		}
	}
	switch a := c.IdentityAgent; {
	case a == "":
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
		h.IdentityAgent = a
	}
	return h, nil
}

// addressFamilies maps AddressFamily's values to the network dialed.
var addressFamilies = map[string]string{"any": "tcp", "inet": "tcp4", "inet6": "tcp6"}

// setProxyCommand sets h.ProxyCommand to command with its tokens expanded:
// ProxyCommand takes %%, %h, %k, %n, %p and %r (the shell expands the
// environment); "none" is none.
func (h *hop) setProxyCommand(command string) error {
	if strings.EqualFold(command, "none") {
		h.ProxyCommand = ""
		return nil
	}
	pc, err := h.tokens.ExpandProxyCommand(command)
	if err != nil {
		return err
	}
	h.ProxyCommand = pc
	return nil
}

// configError is an error of the config reader under sshdial's prefix; it
// unwraps to the reader's, so that a context's end is still matched.
type configError struct {
	msg string
	err error
}

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return e.err }
