package sshdial

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	destUser, host, destPort, err := sshconfig.ParseDestination(dest)
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
		if err := sshconfig.CheckRemoteUser(h.User); err != nil {
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
			if _, _, _, err := sshconfig.ParseDestination(j); err != nil {
				if _, ok := passwordUser(j); ok {
					// err would quote the hop's user part.
					return nil, fmt.Errorf("sshdial: invalid ProxyJump hop %s", destinationShown(j))
				}
				return nil, fmt.Errorf("sshdial: invalid ProxyJump %q: %w", sshconfig.RedactDestinations(c.ProxyJump), err)
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
