package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sshdial/sshdial/internal/sshconfig"
)

// usageError is a command line that cannot be run: exit code 2, with the
// usage line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// options is a parsed command line.
type options struct {
	destination string
	port        int    // -p: the first, unless -o Port or a destination port came before it; 0: unset
	user        string // -l: the first, unless -o User or a destination user came before it
	userSeen    bool   // -l, -o User or a destination user@ was given: a later -l loses, as in ssh
	portSeen    bool   // -p, -o Port or a destination port was given: a later -p loses
	login       string // user@host for the password prompt (see configure)
	configFile  *string
	// configLines are -o, -i and -J as ssh_config lines, in command-line
	// order: read before the config files, so they win, as in ssh.
	configLines []string
	dump        bool   // -G: print the evaluated configuration
	background  bool   // -f
	family      string // -4: "inet", -6: "inet6"; "": from the config
	gatewayFlag bool   // -g

	// From the evaluated configuration (see configure).
	batch          bool          // BatchMode: no passphrase prompts
	strictNo       bool          // StrictHostKeyChecking=no given with -o (a config file's is taken as accept-new)
	connectTimeout time.Duration // 0: unset
	exitOnFwdFail  bool          // ExitOnForwardFailure; sshdial's default is yes
	gatewayPorts   bool

	verbose         int
	quiet           bool
	version, help   bool
	statusEvery     time.Duration
	grace           time.Duration
	local, remote   []forwardSpec
	stdio           *endpoint     // -W host:port
	dynamic, httpPx []forwardSpec // listen only

	controlPath *string // -S: a ControlPath line before -o's (it wins over -o ControlPath, as in ssh)
}

// endpoint is one end of a forward: a TCP host:port or a unix socket path.
type endpoint struct {
	host string // TCP host; for a local listener "" means the default bind address, "*" all interfaces
	port int
	path string // unix socket path; set instead of host and port
}

func (e endpoint) network() string {
	if e.path != "" {
		return "unix"
	}
	return "tcp"
}

func (e endpoint) String() string {
	if e.path != "" {
		return e.path
	}
	return net.JoinHostPort(e.host, strconv.Itoa(e.port))
}

// forwardSpec is one -L or -R: listen on listen, connect to target.
type forwardSpec struct {
	flag    string // "-L" or "-R"
	text    string // as given
	listen  endpoint
	target  endpoint
	dynamic bool // -R [bind:]port: a SOCKS proxy, no target
}

const usageLine = "usage: sshdial [-GgNqTvV] [-D [bind:]port] [-F configfile] [-i identity_file]\n" +
	"               [-J jump[,jump]] [-L forward] [-l user] [-o option] [-p port] [-R forward]\n" +
	"               [--http-proxy [bind:]port] [--status interval] [--grace duration]\n" +
	"               [-S ctl_path] [-W host:port] destination\n" +
	"       sshdial demo\n"

// parseArgs parses an OpenSSH-style command line.
func parseArgs(args []string) (*options, error) {
	o := &options{grace: 10 * time.Second}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
			continue
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			takesValue := name == "http-proxy" || name == "status" || name == "grace"
			if takesValue && !hasVal {
				if i+1 >= len(args) {
					return nil, usagef("option --%s needs a value", name)
				}
				i++
				val = args[i]
			} else if !takesValue && hasVal {
				return nil, usagef("option --%s takes no value", name)
			}
			if err := o.long(name, val); err != nil {
				return nil, err
			}
			continue
		case len(a) < 2 || a[0] != '-':
			if len(positional) == 0 {
				// A user or port in the destination wins over the -l, -p
				// and -o User/Port that come after it, as in ssh: passed
				// on as -l and -p would be.
				u, p := destinationParts(a)
				if u != "" && !o.userSeen {
					o.user, o.userSeen = u, true
				}
				if p != 0 && !o.portSeen {
					o.port, o.portSeen = p, true
				}
			}
			positional = append(positional, a)
			continue
		}
		// A cluster of short options: -NvL 8080:host:80, -L8080:host:80.
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !strings.ContainsRune("DFiJLloOpRSwW", rune(c)) || c == 'O' || c == 'w' {
				if err := o.shortFlag(c); err != nil {
					return nil, err
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return nil, usagef("option -%c needs a value", c)
				}
				i++
				val = args[i]
			}
			if err := o.shortValue(c, val); err != nil {
				return nil, err
			}
			break
		}
	}
	if o.help || o.version {
		return o, nil
	}
	switch len(positional) {
	case 0:
		return nil, usagef("missing destination")
	case 1:
	default:
		return nil, usagef("unexpected arguments after the destination %q: %q; sshdial runs no remote command, it only forwards (as ssh -N)", positional[0], strings.Join(positional[1:], " "))
	}
	if dest := positional[0]; dest == "" || strings.HasPrefix(dest, "-") {
		return nil, usagef("bad destination %q", dest)
	}
	o.destination = positional[0]
	if err := o.checkConfigLines(); err != nil {
		return nil, err
	}
	if o.dump {
		return o, nil
	}
	if o.stdio != nil {
		if err := o.checkStdio(); err != nil {
			return nil, err
		}
		return o, nil
	}
	if len(o.local)+len(o.remote)+len(o.dynamic)+len(o.httpPx) == 0 {
		return nil, usagef("nothing to forward: give at least one of -L, -R, -D, --http-proxy, -W")
	}
	return o, nil
}

// shortFlag handles a short option without a value.
func (o *options) shortFlag(c byte) error {
	switch c {
	case 'N', 'T', 'n':
		// sshdial never runs a remote command or opens a terminal.
	case 'g':
		o.gatewayFlag = true
	case 'G':
		o.dump = true
	case 'v':
		o.verbose++
	case 'q':
		o.quiet = true
	case 'V':
		o.version = true
	case 'h':
		o.help = true
	case 'C':
		// Compression: accepted for habit's sake, not done.
	case '4':
		o.family = "inet"
	case '6':
		o.family = "inet6"
	case 'f':
		if !backgroundSupported {
			return usagef("-f (go to background) is not supported here: run sshdial as a service")
		}
		o.background = true
	default:
		return usagef("unknown option -%c", c)
	}
	return nil
}

// shortValue handles a short option with its value.
func (o *options) shortValue(c byte, val string) error {
	switch c {
	case 'L', 'R':
		f, err := parseForward("-"+string(c), val)
		if err != nil {
			return err
		}
		if c == 'L' {
			o.local = append(o.local, f)
		} else {
			o.remote = append(o.remote, f)
		}
	case 'D':
		e, err := parseListenSpec("-D", val)
		if err != nil {
			return err
		}
		o.dynamic = append(o.dynamic, forwardSpec{flag: "-D", text: val, listen: e})
	case 'F':
		o.configFile = &val
	case 'i':
		// As ssh's -i: an IdentityFile before the config's.
		o.configLines = append(o.configLines, "IdentityFile "+quoteConfigArg(val))
	case 'J':
		if !strings.EqualFold(val, "none") {
			for j := range strings.SplitSeq(val, ",") {
				if j == "" {
					return usagef("-J %q: empty jump host", sshconfig.RedactDestinations(val))
				}
			}
		}
		o.configLines = append(o.configLines, "ProxyJump "+val)
	case 'l':
		if val == "" {
			return usagef("-l: empty user name")
		}
		if !o.userSeen {
			o.user, o.userSeen = val, true
		}
	case 'p':
		p, err := parsePort(val, false)
		if err != nil {
			return usagef("-p %q: %v", val, err)
		}
		if !o.portSeen {
			o.port, o.portSeen = p, true
		}
	case 'o':
		// An -o User/Port after -l/-p or a destination's user/port loses
		// to it (passed on as WithUser/WithPort, which win), and one after
		// an earlier -o loses as the reader keeps the first: as in ssh.
		switch kw, _ := sshconfig.LineKeyword(val); kw {
		case "user":
			o.userSeen = true
		case "port":
			o.portSeen = true
		}
		o.configLines = append(o.configLines, val)
		return nil
	case 'S':
		// As ssh's -S: the ControlPath ("none": no sharing), the last
		// -S winning, over -o ControlPath too.
		o.controlPath = &val
	case 'W':
		return o.setStdio(val)
	}
	return nil
}

// long handles a --name[=value] option.
func (o *options) long(name, val string) error {
	switch name {
	case "help":
		o.help = true
	case "version":
		o.version = true
	case "http-proxy":
		e, err := parseListenSpec("--http-proxy", val)
		if err != nil {
			return err
		}
		o.httpPx = append(o.httpPx, forwardSpec{flag: "--http-proxy", text: val, listen: e})
	case "status":
		d, err := time.ParseDuration(val)
		if err != nil || d < time.Second {
			return usagef("--status %q: want an interval of 1s or more, such as 30s", val)
		}
		o.statusEvery = d
	case "grace":
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return usagef("--grace %q: want a duration such as 10s (0 closes open tunnels at once)", val)
		}
		o.grace = d
	default:
		return usagef("unknown option --%s", name)
	}
	return nil
}

// quoteConfigArg quotes s as one argument of an ssh_config line.
func quoteConfigArg(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// checkConfigLines reads the -o, -i and -J lines as ssh_config lines (an
// unknown keyword or a bad value is a usage error, as with ssh), and
// refuses a ProxyCommand beside a ProxyJump on the command line.
func (o *options) checkConfigLines() error {
	for _, line := range o.familyLines() {
		if _, err := sshconfig.ReadCommandLine([]string{line}); err != nil {
			shown := line
			if kw, rest := sshconfig.LineKeyword(line); strings.EqualFold(kw, "proxyjump") {
				shown = kw + " " + sshconfig.RedactDestinations(rest) // an ssh:// user may hold a password
			}
			return usagef("%q: %s", shown, strings.TrimPrefix(err.Error(), "sshconfig: command-line line 1: "))
		}
	}
	jump, command := false, false
	for _, line := range o.configLines {
		switch kw, rest := sshconfig.LineKeyword(line); kw {
		case "proxyjump":
			jump = jump || !strings.EqualFold(strings.TrimSpace(rest), "none")
		case "proxycommand":
			command = command || !strings.EqualFold(strings.TrimSpace(rest), "none")
		}
	}
	if jump && command {
		return usagef("-J (or ProxyJump) and -o ProxyCommand both given: give one")
	}
	return nil
}

// familyLines are the ssh_config lines of the command line: those of -4,
// -6, -g and -S first (they set their value whatever -o says, as in ssh),
// then -o, -i and -J in order.
func (o *options) familyLines() []string {
	var lines []string
	if o.controlPath != nil {
		lines = append(lines, "ControlPath "+quoteConfigArg(*o.controlPath))
	}
	if o.family != "" {
		lines = append(lines, "AddressFamily "+o.family)
	}
	if o.gatewayFlag {
		lines = append(lines, "GatewayPorts yes")
	}
	return append(lines, o.configLines...)
}

// parsePort parses a port as ssh does (a2port): a number, or the name of a
// TCP service this machine knows; zero only when zeroOK.
func parsePort(s string, zeroOK bool) (int, error) {
	low := map[bool]string{true: "0", false: "1"}[zeroOK]
	n, err := sshconfig.A2Port(s)
	if err != nil {
		if t := strings.TrimLeft(s, " \t\n\v\f\r+"); t != "" && strings.Trim(t, "0123456789") == "" {
			return 0, fmt.Errorf("port %s out of range (%s to 65535)", t, low)
		}
		return 0, fmt.Errorf("not a port number or a known service")
	}
	if n == 0 && !zeroOK {
		return 0, fmt.Errorf("port 0 out of range (%s to 65535)", low)
	}
	return n, nil
}

// splitFields splits an OpenSSH forward specification at colons, keeping
// bracketed IPv6 addresses whole (brackets removed).
func splitFields(s string) ([]string, error) {
	var fields []string
	for {
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, errors.New("unclosed '['")
			}
			fields = append(fields, s[1:end])
			s = s[end+1:]
			if s == "" {
				return fields, nil
			}
			if s[0] != ':' {
				return nil, errors.New("']' not followed by ':'")
			}
			s = s[1:]
			continue
		}
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return append(fields, s), nil
		}
		fields = append(fields, s[:i])
		s = s[i+1:]
	}
}

// anyBind turns an empty bind address, given as such, into "*": all
// interfaces, as ssh reads it.
func anyBind(h string) string {
	if h == "" {
		return "*"
	}
	return h
}

// parseListenSpec parses [bind:]port for -D and --http-proxy.
func parseListenSpec(flag, s string) (endpoint, error) {
	fields, err := splitFields(s)
	if err != nil {
		return endpoint{}, usagef("%s %q: %v", flag, s, err)
	}
	var e endpoint
	switch len(fields) {
	case 1:
		e.port, err = parsePort(fields[0], true)
	case 2:
		e.host = anyBind(fields[0])
		e.port, err = parsePort(fields[1], true)
	default:
		return endpoint{}, usagef("%s %q: want [bind_address:]port", flag, s)
	}
	if err != nil {
		return endpoint{}, usagef("%s %q: %v", flag, s, err)
	}
	return e, nil
}

// parseForward parses what -L and -R take:
//
//	[bind_address:]port:host:hostport
//	[bind_address:]port:/socket
//	/socket:host:hostport
//	/socket:/socket
//	[bind_address:]port (-R only: remote dynamic forwarding)
//
// For -L the listening end is local and the target is reached through the
// SSH server; for -R the other way round.
func parseForward(flag, s string) (forwardSpec, error) {
	f := forwardSpec{flag: flag, text: s}
	fail := func(why string) (forwardSpec, error) {
		want := "[bind_address:]port:host:hostport, [bind_address:]port:/socket, /socket:host:hostport or /socket:/socket"
		if flag == "-R" {
			want += ", or [bind_address:]port for a SOCKS proxy"
		}
		return forwardSpec{}, usagef("%s %q: %s; want %s", flag, s, why, want)
	}
	fields, err := splitFields(s)
	if err != nil {
		return fail(err.Error())
	}
	isPath := func(x string) bool {
		return strings.HasPrefix(x, "/") || strings.HasPrefix(x, "./") || strings.HasPrefix(x, "~")
	}
	var listen, target []string
	switch {
	case len(fields) >= 2 && isPath(fields[len(fields)-1]):
		listen, target = fields[:len(fields)-1], fields[len(fields)-1:]
	case len(fields) >= 3:
		listen, target = fields[:len(fields)-2], fields[len(fields)-2:]
	case flag == "-R" && (len(fields) == 1 || len(fields) == 2):
		// -R [bind_address:]port: remote dynamic forwarding, a SOCKS
		// proxy whose tunnels are dialed from here.
		f.dynamic = true
		listen = fields
	default:
		return fail("too few fields")
	}
	switch {
	case len(listen) == 1 && isPath(listen[0]):
		f.listen.path = listen[0]
	case len(listen) == 1:
		if f.listen.port, err = parsePort(listen[0], true); err != nil {
			return fail("listening " + err.Error())
		}
	case len(listen) == 2:
		f.listen.host = anyBind(listen[0])
		if f.listen.port, err = parsePort(listen[1], true); err != nil {
			return fail("listening " + err.Error())
		}
	default:
		return fail("too many fields")
	}
	if f.dynamic && f.listen.path != "" {
		return fail("remote dynamic forwarding takes [bind_address:]port")
	}
	switch {
	case f.dynamic:
	case len(target) == 1:
		f.target.path = target[0]
	default:
		if target[0] == "" {
			return fail("empty target host")
		}
		f.target.host = target[0]
		if f.target.port, err = parsePort(target[1], false); err != nil {
			return fail("target " + err.Error())
		}
	}
	if strings.ContainsAny(s, "\x00\r\n") {
		return fail("control character")
	}
	return f, nil
}

// destinationParts returns the user (user@) and port (ssh://host:port, or
// host:port, which sshdial also takes) that destination names, as Connect
// reads them; "" and 0 for none, or for a destination Connect will refuse.
func destinationParts(destination string) (user string, port int) {
	user, _, port, err := sshconfig.ParseDestination(destination)
	if err != nil {
		return "", 0
	}
	return user, port
}
