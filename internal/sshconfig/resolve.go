// Package sshconfig reads ssh_config files as OpenSSH's ssh(1) reads them
// and resolves the configuration of one connection, as `ssh -G` prints it.
//
// The reader follows OpenSSH's readconf.c: lines are split as ssh splits
// them (quotes, one '=' after the keyword, '#' comments only at the start
// of an argument), keywords are case-insensitive, the first value obtained
// wins (IdentityFile and CertificateFile accumulate), Include takes globs,
// Host takes patterns with '!', and Match takes every criterion of OpenSSH
// 9.x (all, canonical, final, exec, host, originalhost, user, localuser,
// and localnetwork and tagged of 9.4), each negatable with '!', several
// ANDed. "Match final", and CanonicalizeHostname, make a second pass over
// the files as ssh does. An unknown keyword is an error unless
// IgnoreUnknown lists it; keywords ssh knows that sshdial does not use are
// accepted and their arguments are not checked (ssh refuses some bad
// values there, such as "SendEnv A=B").
//
// The differential tests run OpenSSH 9.2 of Debian 12, whose behaviour is
// followed where it differs from upstream's source (ProxyJump takes the
// value up to the first blank; host names with shell characters are
// refused). Deliberate differences, where later OpenSSH versions behave
// otherwise and sshdial follows them: User takes % tokens, times take
// decimals ("1.5") but no sign and one seconds part, %j exists and %C
// hashes it, Match localnetwork and tagged (with Tag) exist, and a domain
// name (CanonicalDomains, the host of an ssh:// jump host) may start with
// '_'. Host names
// are not canonicalized through CNAMEs (CanonicalizePermittedCNAMEs is
// ignored). Debian's ServerAliveInterval 300 under BatchMode (a Debian
// patch) is not followed; Apple's UseKeychain is accepted.
package sshconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options say which files Resolve reads and what it knows of the local
// side. The zero value reads no file.
type Options struct {
	// ConfigFile, when not "", is the only file read, as ssh -F: the user's
	// and the system's are not. "none" reads no file. A file that cannot
	// be opened is an error.
	ConfigFile string
	// UserConfig is the user's file (normally ~/.ssh/config), read when
	// ConfigFile is "": a missing file is no error; one writable by others
	// or owned by another user is, as in ssh.
	UserConfig string
	// SystemConfig is the system's file (normally /etc/ssh/ssh_config),
	// read after UserConfig when ConfigFile is "": a missing file is no
	// error.
	SystemConfig string

	// Home is the local user's home directory, for ~ and %d. ssh(1) takes
	// it from the passwd entry, not $HOME.
	Home string
	// IncludeHome is the directory of ~ in Include lines (and of the
	// ~/.ssh that relative Include paths of user files are in): ssh
	// expands those with glob(3), which takes $HOME. "" is Home.
	IncludeHome string
	// LocalUser is the local user name: %u, Match localuser, and the user
	// when nothing else names one.
	LocalUser string
	// UID is %i; "" is os.Getuid().
	UID string
	// LocalHostName is %l (and %L up to its first dot); "" is os.Hostname().
	LocalHostName string

	// CommandLine are config lines read before any file, as ssh -o: their
	// values win. Host, Match and Include are refused there.
	CommandLine []string
	// User and Port are the destination's (user@host, ssh://host:port),
	// taken after CommandLine and before the files, as ssh does; "" and 0
	// for none.
	User string
	Port int
	// LoginUser and LoginPort are ssh -l's and -p's given before any -o
	// line: taken first, they win over CommandLine, the destination and
	// the files; "" and 0 for none.
	LoginUser string
	LoginPort int

	// NoExec makes every Match line with an exec criterion (negated or
	// not) fail to match, without running its command; Config.SkippedExec
	// names each such line. By default the commands run, as in ssh.
	NoExec bool
	// Exec runs a Match exec command and reports whether it exited 0; nil
	// runs it as ssh does: $SHELL -c command (else /bin/sh), with standard
	// input and output on the null device and standard error on
	// ExecStderr (nil: discarded).
	Exec       func(ctx context.Context, command string) (bool, error)
	ExecStderr io.Writer
	// Context bounds Match exec commands and host name lookups; nil is
	// context.Background().
	Context context.Context
	// LookupHost reports whether name resolves (for CanonicalizeHostname);
	// nil uses the system resolver.
	LookupHost func(ctx context.Context, name string) bool
}

// Config is the resolved configuration of one connection: each value as
// `ssh -G` prints it, ssh's defaults filled in.
type Config struct {
	Host                  string   // the host as typed (%n)
	User                  string   // the remote user
	HostName              string   // the host to connect to (%h)
	Port                  int      // the port
	AddressFamily         string   // "any", "inet" or "inet6"
	BatchMode             bool     // BatchMode yes
	ExitOnForwardFailure  bool     // ExitOnForwardFailure yes
	GatewayPorts          bool     // GatewayPorts yes
	IdentitiesOnly        bool     // IdentitiesOnly yes
	ControlMaster         string   // "false", "true", "auto", "ask" or "autoask"
	StrictHostKeyChecking string   // "true", "false", "ask" or "accept-new"
	ServerAliveCountMax   int      // default 3
	ServerAliveInterval   int      // seconds; 0 when unset
	ConnectTimeout        int      // seconds; -1 when unset ("none")
	ControlPath           string   // expanded; "" when unset or none
	HostKeyAlias          string   // lowercased; "" when unset
	IdentityAgent         string   // ~, tokens and ${VAR} expanded; "" when unset
	IdentityFiles         []string // as written, unexpanded (see Tokens.ExpandPath); ssh's defaults when none is set
	IdentityFilesDefault  bool     // IdentityFiles are ssh's defaults
	CertificateFiles      []string // as written, unexpanded
	GlobalKnownHostsFiles []string // as written (ssh expands nothing); empty for none
	UserKnownHostsFiles   []string // expanded; empty for none
	ProxyCommand          string   // as written (tokens unexpanded); "" when unset or none
	ProxyJump             string   // as `ssh -G` prints it; "" when unset or none
	CanonicalizeHostname  string   // "false", "true" or "always"
	// PreferredAuthentications is the method list as written
	// ("keyboard-interactive,password"); "" when unset (ssh's order).
	PreferredAuthentications string
	NumberOfPasswordPrompts  int // default 3; 0 turns password and keyboard-interactive off

	// Tokens are the connection's % tokens, for expanding IdentityFile,
	// CertificateFile and ProxyCommand.
	Tokens Tokens
	// SkippedExec names ("file line N") each Match line that did not match
	// because it has an exec criterion and Options.NoExec is set.
	SkippedExec []string

	set map[string]bool // keys a line set
}

// IsSet reports whether a line (of a file or the command line) set key
// (lowercase), rather than ssh's default applying.
func (c *Config) IsSet(key string) bool { return c.set[strings.ToLower(key)] }

// idFile is an IdentityFile or CertificateFile and whether a user's file
// (or the command line) named it, which ssh keeps apart for duplicates.
type idFile struct {
	path string
	user bool
}

// settings are the values obtained so far: nil (or unset) until a line
// sets them; the first wins.
type settings struct {
	hostName, user, hostKeyAlias, identityAgent, controlPath, proxyCommand, ignoreUnknown *string
	tag, preferredAuth                                                                    *string
	passwordPrompts                                                                       *int
	strict, addressFamily, controlMaster, canonicalize                                    *string
	port, connectTimeout, aliveInterval, aliveCountMax, canonMaxDots                      *int
	identitiesOnly, batchMode, exitOnFwdFail, gatewayPorts, canonFallback                 *bool
	identityFiles, certificateFiles                                                       []idFile
	userKnownHosts, globalKnownHosts                                                      []string
	canonDomains                                                                          []string
	jumpHost                                                                              *string // the last hop's host; "none" for none
	jumpUser, jumpExtra                                                                   string
	jumpPort                                                                              int
}

// Limits of OpenSSH.
const (
	maxIncludeDepth  = 16  // READCONF_MAX_DEPTH
	maxIdentityFiles = 100 // SSH_MAX_IDENTITY_FILES
	maxCertFiles     = 100 // SSH_MAX_CERTIFICATE_FILES
	maxHostsFiles    = 32  // SSH_MAX_HOSTS_FILES
)

// reader evaluates config lines for one destination.
type reader struct {
	o            *Options
	ctx          context.Context
	s            settings
	host         string // what Host patterns match: the host as typed, or in the final pass the final host name
	originalHost string // the host as typed
	final        bool   // the final pass
	wantFinal    bool   // a Match final was seen
	localHost    string
	uid          string
	userLiteral  bool // the user is the destination's, which is not expanded
	cfg          *Config
}

// lineFlags are how a line is read (OpenSSH's SSHCONF_* flags).
type lineFlags struct {
	userConf   bool // the user's file, -F, -o or included from them: ~ in Include, relative Include in ~/.ssh
	neverMatch bool // included from a block that does not apply: nothing applies
	cmdline    bool // a -o line
}

// Resolve evaluates the configuration for host (the destination's host as
// typed, without user or port) as `ssh -G` does, and returns it with ssh's
// defaults filled in. Errors name the file and line.
func Resolve(host string, o Options) (*Config, error) {
	if err := ValidHostName(host); err != nil {
		return nil, fmt.Errorf("sshconfig: %w", err)
	}
	r := &reader{o: &o, ctx: o.Context, host: host, originalHost: host, cfg: &Config{}}
	if r.ctx == nil {
		r.ctx = context.Background()
	}
	r.uid = o.UID
	if r.uid == "" {
		r.uid = strconv.Itoa(os.Getuid())
	}
	r.localHost = o.LocalHostName
	if r.localHost == "" {
		r.localHost, _ = os.Hostname()
	}
	if o.LoginUser != "" {
		u := o.LoginUser
		r.s.user, r.userLiteral = &u, true
	}
	if o.LoginPort != 0 {
		p := o.LoginPort
		r.s.port = &p
	}
	for i, line := range o.CommandLine {
		active := true
		if err := r.line(line, "command-line", i+1, &active, lineFlags{userConf: true, cmdline: true}, 0); err != nil {
			return nil, err
		}
	}
	if o.User != "" && r.s.user == nil {
		u := o.User
		r.s.user, r.userLiteral = &u, true
	}
	if o.Port != 0 && r.s.port == nil {
		p := o.Port
		r.s.port = &p
	}
	if err := r.files(); err != nil {
		return nil, err
	}

	// As ssh.c: the canonicalization options get their defaults (so the
	// final pass cannot set them), HostName takes effect, names are
	// lowercased, and a name is canonicalized when asked to.
	if r.s.canonicalize == nil {
		no := "false"
		r.s.canonicalize = &no
	}
	if r.s.canonMaxDots == nil {
		one := 1
		r.s.canonMaxDots = &one
	}
	if r.s.canonFallback == nil {
		yes := true
		r.s.canonFallback = &yes
	}
	name := host
	if r.s.hostName != nil {
		t := Tokens{H: host}
		hn, err := t.Expand(*r.s.hostName, HostNameTokens, false, false)
		if err != nil {
			return nil, fmt.Errorf("sshconfig: HostName %q: %w", *r.s.hostName, err)
		}
		name = hn
	}
	if !isAddr(name) {
		name = LowerASCII(name)
		if err := r.canonicalize(&name); err != nil {
			return nil, err
		}
	}
	if r.canonicalizeMode() != "false" {
		r.wantFinal = true
	}
	if r.wantFinal {
		hn := name
		r.s.hostName = &hn
		r.host, r.final = name, true
		if err := r.files(); err != nil {
			return nil, err
		}
	}
	return r.finish(name)
}

// files reads the config files as ssh's process_config_files.
func (r *reader) files() error {
	o := r.o
	if o.ConfigFile != "" {
		if strings.EqualFold(o.ConfigFile, "none") {
			return nil
		}
		active := true
		found, err := r.readFile(o.ConfigFile, lineFlags{userConf: true}, false, &active, 0)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("sshconfig: cannot open config file %q: it does not exist or is not readable", o.ConfigFile)
		}
		return nil
	}
	if o.UserConfig != "" {
		active := true
		if _, err := r.readFile(o.UserConfig, lineFlags{userConf: true}, true, &active, 0); err != nil {
			return err
		}
	}
	if o.SystemConfig != "" {
		active := true
		if _, err := r.readFile(o.SystemConfig, lineFlags{}, false, &active, 0); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads one file; found is false when it cannot be opened (which
// is no error here, as in ssh's read_config_file).
func (r *reader) readFile(path string, fl lineFlags, checkPerm bool, active *bool, depth int) (found bool, err error) {
	if depth > maxIncludeDepth {
		return false, fmt.Errorf("sshconfig: %s: too many nested Include directives (more than %d)", path, maxIncludeDepth)
	}
	f, err := os.Open(path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("sshconfig: %s: %w", path, err)
	}
	if fi.IsDir() {
		return false, fmt.Errorf("sshconfig: %s is a directory", path)
	}
	if checkPerm {
		if err := checkOwnerPerm(path, fi); err != nil {
			return false, err
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return false, fmt.Errorf("sshconfig: reading %s: %w", path, err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if err := r.line(line, path, i+1, active, fl, depth); err != nil {
			return true, err
		}
	}
	return true, nil
}

// lineError is an error in a config line.
func lineError(file string, line int, format string, a ...any) error {
	return fmt.Errorf("sshconfig: %s line %d: "+format, append([]any{file, line}, a...)...)
}

// line reads one config line as OpenSSH's process_config_line_depth.
func (r *reader) line(text, file string, lineNo int, active *bool, fl lineFlags, depth int) error {
	keyword, rest, skip, _ := splitLine(text)
	if skip {
		return nil
	}
	bad := func(format string, a ...any) error {
		return lineError(file, lineNo, "%s: %s", keyword, fmt.Sprintf(format, a...))
	}
	if rest == "" {
		return bad("missing argument")
	}
	k, known := keywords[keyword]
	if !known {
		if r.s.ignoreUnknown != nil && MatchPatternList(keyword, *r.s.ignoreUnknown, true) == 1 {
			return nil
		}
		return lineError(file, lineNo, "bad configuration option %q", keyword)
	}
	args, ok := argvSplit(rest)
	if !ok {
		return bad("unterminated quote")
	}
	on := *active
	s := &r.s

	// one returns the single argument of a keyword that takes one.
	one := func() (string, error) {
		if len(args) == 0 || args[0] == "" {
			return "", bad("missing argument")
		}
		if len(args) > 1 {
			return "", bad("unexpected %q after the argument", strings.Join(args[1:], " "))
		}
		return args[0], nil
	}
	str := func(dst **string) error {
		v, err := one()
		if err != nil {
			return err
		}
		if on && *dst == nil {
			*dst = &v
		}
		return nil
	}
	multi := func(dst **string, values map[string]string, want string) error {
		v, err := one()
		if err != nil {
			return err
		}
		norm, ok := values[LowerASCII(v)]
		if !ok {
			return bad("unsupported value %q (%s)", v, want)
		}
		if on && *dst == nil {
			*dst = &norm
		}
		return nil
	}
	flag := func(dst **bool) error {
		v, err := one()
		if err != nil {
			return err
		}
		var b bool
		switch LowerASCII(v) {
		case "yes", "true":
			b = true
		case "no", "false":
		default:
			return bad("unsupported value %q (yes or no)", v)
		}
		if on && *dst == nil {
			*dst = &b
		}
		return nil
	}
	timeVal := func(dst **int) error {
		v, err := one()
		if err != nil {
			return err
		}
		if v == "none" {
			return nil // as ssh: "none" is unset, which a later line may set
		}
		secs, ok := parseTime(v)
		if !ok {
			return bad("invalid time value %q (seconds, or a time like 1m30s)", v)
		}
		n := int(secs)
		if on && *dst == nil {
			*dst = &n
		}
		return nil
	}
	integer := func(dst **int) error {
		v, err := one()
		if err != nil {
			return err
		}
		n64, err := strtonum(v, 0, 1<<31-1)
		if err != nil {
			return bad("%v (want a non-negative integer)", err)
		}
		n := int(n64)
		if on && *dst == nil {
			*dst = &n
		}
		return nil
	}
	list := func(dst *[]string) error {
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
		if len(args) > maxHostsFiles {
			return bad("more than %d files", maxHostsFiles)
		}
		if on && *dst == nil {
			*dst = append([]string{}, args...)
		}
		return nil
	}
	files := func(dst *[]idFile, max int) error {
		v, err := one()
		if err != nil {
			return err
		}
		if !on {
			return nil
		}
		for _, f := range *dst {
			if f.path == v && f.user == fl.userConf {
				return nil // a duplicate, as ssh drops it
			}
		}
		if len(*dst) >= max {
			return bad("more than %d files", max)
		}
		*dst = append(*dst, idFile{v, fl.userConf})
		return nil
	}

	switch k {
	case kIgnored:
		return nil
	case kHost:
		if fl.cmdline {
			return bad("not allowed on the command line")
		}
		*active = false
		matched := false
		for _, a := range args {
			if a == "" {
				return bad("empty argument")
			}
			if fl.neverMatch {
				break
			}
			neg := strings.HasPrefix(a, "!")
			if MatchPattern(r.host, strings.TrimPrefix(a, "!")) {
				if neg {
					matched = false
					break
				}
				matched = true
			}
		}
		*active = matched && !fl.neverMatch
		return nil
	case kMatch:
		if fl.cmdline {
			return bad("not allowed on the command line")
		}
		m, err := r.match(rest, file, lineNo)
		if err != nil {
			return err
		}
		*active = m && !fl.neverMatch
		return nil
	case kInclude:
		if fl.cmdline {
			return bad("not allowed on the command line")
		}
		return r.include(args, file, lineNo, active, fl, depth)
	case kIgnoreUnknown:
		return str(&s.ignoreUnknown)
	case kTag:
		return str(&s.tag)
	case kPreferredAuthentications:
		return str(&s.preferredAuth)
	case kNumberOfPasswordPrompts:
		return integer(&s.passwordPrompts)
	case kHostName:
		return str(&s.hostName)
	case kUser:
		return str(&s.user)
	case kHostKeyAlias:
		return str(&s.hostKeyAlias)
	case kControlPath:
		return str(&s.controlPath)
	case kPort:
		v, err := one()
		if err != nil {
			return err
		}
		p, err := parsePort(v)
		if err != nil {
			return bad("%v", err)
		}
		if on && s.port == nil {
			s.port = &p
		}
	case kIdentityFile:
		return files(&s.identityFiles, maxIdentityFiles)
	case kCertificateFile:
		return files(&s.certificateFiles, maxCertFiles)
	case kIdentitiesOnly:
		return flag(&s.identitiesOnly)
	case kBatchMode:
		return flag(&s.batchMode)
	case kExitOnForwardFailure:
		return flag(&s.exitOnFwdFail)
	case kGatewayPorts:
		return flag(&s.gatewayPorts)
	case kCanonicalizeFallbackLocal:
		return flag(&s.canonFallback)
	case kStrictHostKeyChecking:
		return multi(&s.strict, map[string]string{"yes": "true", "true": "true", "no": "false", "false": "false", "off": "false", "ask": "ask", "accept-new": "accept-new"}, "yes, accept-new, no, off or ask")
	case kAddressFamily:
		return multi(&s.addressFamily, map[string]string{"any": "any", "inet": "inet", "inet6": "inet6"}, "any, inet or inet6")
	case kControlMaster:
		return multi(&s.controlMaster, map[string]string{"yes": "true", "true": "true", "no": "false", "false": "false", "auto": "auto", "ask": "ask", "autoask": "autoask"}, "yes, no, auto, ask or autoask")
	case kCanonicalizeHostname:
		return multi(&s.canonicalize, map[string]string{"yes": "true", "true": "true", "no": "false", "false": "false", "always": "always"}, "yes, no or always")
	case kServerAliveInterval:
		return timeVal(&s.aliveInterval)
	case kConnectTimeout:
		return timeVal(&s.connectTimeout)
	case kServerAliveCountMax:
		return integer(&s.aliveCountMax)
	case kCanonicalizeMaxDots:
		return integer(&s.canonMaxDots)
	case kUserKnownHostsFile:
		return list(&s.userKnownHosts)
	case kGlobalKnownHostsFile:
		return list(&s.globalKnownHosts)
	case kCanonicalDomains:
		// As OpenSSH, each domain is kept in lower case without a
		// final '.'.
		domains := make([]string, 0, len(args))
		for i, a := range args {
			if strings.EqualFold(a, "none") {
				if i > 0 || len(args) > 1 {
					return bad("\"none\" must appear alone")
				}
				domains = append(domains, a)
				continue
			}
			d, err := validDomain(a)
			if err != nil {
				return bad("%v", err)
			}
			domains = append(domains, LowerASCII(d))
		}
		if on && s.canonDomains == nil {
			s.canonDomains = domains
		}
	case kIdentityAgent:
		v, err := one()
		if err != nil {
			return err
		}
		if strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "${") && !validEnvName(v[1:]) {
			return bad("invalid environment name %q", v)
		}
		if on && s.identityAgent == nil {
			s.identityAgent = &v
		}
	case kProxyCommand:
		// The command as written after the keyword, quotes and all: the
		// shell splits it.
		// ProxyJump (but not ProxyJump none) sets it to none: the first
		// of the two wins.
		v := strings.TrimLeft(rest, whitespace+"=")
		if on && s.proxyCommand == nil {
			s.proxyCommand = &v
		}
	case kProxyJump:
		// The value as written up to the first white space, as ssh 9.2
		// (Debian 12) takes it: "ProxyJump a b" is a.
		v := strings.TrimLeft(rest, whitespace+"=")
		if i := strings.IndexAny(v, " \t"); i >= 0 {
			v = v[:i]
		}
		if err := r.proxyJump(v, on); err != nil {
			shown, merged := redactDestinations(v)
			if urlWithoutUser(v) {
				// A blank, a NUL or ",ssh://" in a password ends the
				// value or the hop before its '@': what is left
				// after "ssh://" may be a piece of the password.
				return bad("invalid ProxyJump: an ssh:// URL in it has no '@' (the value is not shown: it may hold part of a password)")
			}
			if merged {
				// A password with a ',' was split into hops: the
				// error may quote a piece of it.
				return bad("invalid ProxyJump %q", shown)
			}
			return bad("invalid ProxyJump %q: %v", shown, err)
		}
	}
	return nil
}

// urlWithoutUser reports whether a hop of the ProxyJump value v is an
// ssh:// URL without an '@'.
func urlWithoutUser(v string) bool {
	for _, hop := range strings.Split(v, ",") {
		if urlStart(hop) >= 0 && !strings.Contains(hop, "@") {
			return true
		}
	}
	return false
}

// proxyJump reads a ProxyJump value as OpenSSH's parse_jump: the last hop
// is kept apart (host, user, port) from the hops before it.
func (r *reader) proxyJump(v string, on bool) error {
	s := &r.s
	on = on && s.proxyCommand == nil && s.jumpHost == nil
	spec := v
	if i := strings.IndexByte(spec, '#'); i >= 0 {
		spec = spec[:i]
	}
	spec = strings.TrimRight(spec, whitespace)
	if strings.EqualFold(v, "none") {
		if on {
			none := "none"
			s.jumpHost = &none
		}
		return nil
	}
	hops := strings.Split(spec, ",")
	var user, host string
	port := -1
	for i := len(hops) - 1; i >= 0; i-- {
		u, h, p, err := parseUserHostPort(hops[i])
		if err != nil {
			return err
		}

		if i == len(hops)-1 {
			user, host, port = u, h, p
		}
	}
	if on {
		s.jumpHost, s.jumpUser, s.jumpPort = &host, user, port
		none := "none"
		s.proxyCommand = &none
		if i := strings.LastIndexByte(v, ','); i > 0 {
			s.jumpExtra = v[:i]
		}
	}
	return nil
}

// parseUserHostPort parses one jump host: ssh://[user@]host[:port] or
// [user@]host[:port] as OpenSSH's parse_ssh_uri and parse_user_host_port.
func parseUserHostPort(s string) (user, host string, port int, err error) {
	port = -1
	if strings.HasPrefix(s, "ssh://") { // case matters, as in parse_uri
		return ParseSSHURI(s[6:])
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if i == 0 {
			return "", "", 0, errors.New("empty user name")
		}
		user, s = s[:i], s[i+1:]
	}
	host, rest, hasRest, err := hpdelim(s)
	if err != nil {
		return "", "", 0, err
	}
	if host == "" {
		return "", "", 0, errors.New("empty host name")
	}
	if hasRest && rest != "" {
		if port, err = parsePort(rest); err != nil {
			return "", "", 0, err
		}
	}
	return user, host, port, nil
}

// hpdelim splits host[:port] or [host]:port (also with '/' for ':') as
// OpenSSH's hpdelim, brackets removed.
func hpdelim(s string) (host, rest string, hasRest bool, err error) {
	i := 0
	if strings.HasPrefix(s, "[") {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", "", false, errors.New("missing ']'")
		}
		i = j + 1
	} else if j := strings.IndexAny(s, ":/"); j >= 0 {
		i = j
	} else {
		i = len(s)
	}
	if i < len(s) && s[i] != ':' && s[i] != '/' {
		return "", "", false, fmt.Errorf("unexpected %q after ']'", s[i:])
	}
	host = s[:i]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if i < len(s) {
		return host, s[i+1:], true, nil
	}
	return host, "", false, nil
}

// include reads the files an Include line names, as OpenSSH: globs, in
// sorted order; a relative path is in ~/.ssh (user files) or /etc/ssh
// (the system file); a Match or Host in an included file does not change
// whether the including block applies.
func (r *reader) include(args []string, file string, lineNo int, active *bool, fl lineFlags, depth int) error {
	if len(args) == 0 {
		return lineError(file, lineNo, "include: missing argument")
	}
	for _, a := range args {
		if a == "" {
			return lineError(file, lineNo, "include: empty argument")
		}
		if strings.HasPrefix(a, "~") && !fl.userConf {
			return lineError(file, lineNo, "include: bad include path %s (~ in the system file)", a)
		}
		pattern := a
		home := r.o.IncludeHome
		if home == "" {
			home = r.o.Home
		}
		switch {
		case strings.HasPrefix(a, "~"):
			p, err := ExpandTilde(a, home)
			if err != nil {
				return lineError(file, lineNo, "include %s: %v", a, err)
			}
			pattern = p
		case !filepath.IsAbs(a) && fl.userConf:
			p, err := ExpandTilde("~/.ssh/"+a, home)
			if err != nil {
				return lineError(file, lineNo, "include %s: %v", a, err)
			}
			pattern = p
		case !filepath.IsAbs(a):
			pattern = "/etc/ssh/" + a
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return lineError(file, lineNo, "include %s: %v", a, err)
		}
		sort.Strings(matches)
		outer := *active
		for _, m := range matches {
			sub := fl
			sub.neverMatch = fl.neverMatch || !outer
			if _, err := r.readFile(m, sub, true, active, depth+1); err != nil {
				return err
			}
			*active = outer
		}
	}
	return nil
}

// match evaluates the criteria of a Match line as OpenSSH's match_cfg_line.
func (r *reader) match(rest, file string, lineNo int) (bool, error) {
	bad := func(format string, a ...any) error {
		return lineError(file, lineNo, "match: "+format, a...)
	}
	s := &r.s
	host := r.originalHost
	switch {
	case r.final:
		host = *s.hostName
	case s.hostName != nil:
		t := Tokens{H: r.originalHost}
		hn, err := t.Expand(*s.hostName, HostNameTokens, false, false)
		if err != nil {
			return false, bad("HostName %q: %v", *s.hostName, err)
		}
		host = hn
	}
	port := 22
	if s.port != nil {
		port = *s.port
	}
	ruser := r.o.LocalUser
	if s.user != nil {
		ruser = *s.user
	}
	result, attributes := true, 0
	skippedExec := false
	cp, more := rest, true
	for more {
		var attrib string
		var ok bool
		attrib, cp, more, ok = strdelim(cp, true)
		if !ok {
			return false, bad("unterminated quote")
		}
		if attrib == "" {
			break
		}
		if attrib[0] == '#' {
			break
		}
		orig := attrib
		negate := attrib[0] == '!'
		if negate {
			attrib = attrib[1:]
		}
		if strings.EqualFold(attrib, "all") {
			var arg string
			if more {
				arg, cp, more, ok = strdelim(cp, true)
				if !ok {
					return false, bad("unterminated quote")
				}
			}
			if attributes > 1 || (arg != "" && arg[0] != '#') {
				return false, bad("%q cannot be combined with other Match attributes", orig)
			}
			if result {
				result = !negate
			}
			return result, nil
		}
		attributes++
		if strings.EqualFold(attrib, "canonical") || strings.EqualFold(attrib, "final") {
			if strings.EqualFold(attrib, "final") {
				r.wantFinal = true
			}
			if r.final == negate {
				result = false
			}
			continue
		}
		var arg string
		if more {
			arg, cp, more, ok = strdelim(cp, true)
			if !ok {
				return false, bad("unterminated quote")
			}
		}
		if arg == "" || arg[0] == '#' {
			return false, bad("missing argument for %s", attrib)
		}
		var m bool
		switch LowerASCII(attrib) {
		case "host":
			m = MatchPatternList(LowerASCII(host), arg, true) == 1
		case "originalhost":
			m = MatchPatternList(LowerASCII(r.originalHost), arg, true) == 1
		case "user":
			m = MatchPatternList(ruser, arg, false) == 1
		case "localuser":
			m = MatchPatternList(r.o.LocalUser, arg, false) == 1
		case "tagged":
			tag := ""
			if s.tag != nil {
				tag = *s.tag
			}
			m = MatchPatternList(tag, arg, false) == 1
		case "localnetwork":
			var err error
			if m, err = localNetwork(arg); err != nil {
				return false, bad("localnetwork %q: %v", arg, err)
			}
		case "exec":
			if !result {
				continue // a criterion before failed: the command does not run
			}
			if r.o.NoExec {
				skippedExec = true
				result = false
				continue
			}
			t := r.execTokens(host, ruser, port)
			cmd, err := t.Expand(arg, ExecTokens, false, false)
			if err != nil {
				return false, bad("exec %q: %v", arg, err)
			}
			if m, err = r.exec(cmd); err != nil {
				return false, bad("exec: %w", err)
			}
		default:
			return false, bad("unsupported Match attribute %q", attrib)
		}
		if m == negate {
			result = false
		}
	}
	if attributes == 0 {
		return false, bad("one or more attributes required")
	}
	if skippedExec {
		r.cfg.SkippedExec = append(r.cfg.SkippedExec, fmt.Sprintf("%s line %d", file, lineNo))
	}
	return result, nil
}

// execTokens are the tokens of a Match exec command: those known so far.
func (r *reader) execTokens(host, ruser string, port int) Tokens {
	s := &r.s
	t := r.baseTokens()
	t.H, t.R, t.P = host, ruser, strconv.Itoa(port)
	t.K = host
	if s.hostKeyAlias != nil {
		t.K = *s.hostKeyAlias
	}
	if s.jumpHost != nil && !strings.EqualFold(*s.jumpHost, "none") { // option_clear_or_none
		t.J = *s.jumpHost
	}
	t.C = ConnectionHash(t.Ll, t.H, t.P, t.R, t.J)
	return t
}

// baseTokens are the tokens that do not depend on the config.
func (r *reader) baseTokens() Tokens {
	short, _, _ := strings.Cut(r.localHost, ".")
	return Tokens{D: r.o.Home, I: r.uid, Ll: r.localHost, L: short, N: r.originalHost, U: r.o.LocalUser}
}

// exec runs a Match exec command and reports whether it exited 0.
func (r *reader) exec(command string) (bool, error) {
	if r.o.Exec != nil {
		return r.o.Exec(r.ctx, command)
	}
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" && os.Getenv("SHELL") == "" {
		cmd = exec.CommandContext(r.ctx, "cmd.exe", "/c", command)
	} else {
		cmd = exec.CommandContext(r.ctx, shell, "-c", command)
	}
	cmd.Stderr = r.o.ExecStderr
	err := cmd.Run()
	if err == nil {
		return true, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return false, nil
	}
	if r.ctx.Err() != nil {
		return false, fmt.Errorf("command interrupted: %w", r.ctx.Err())
	}
	return false, fmt.Errorf("command did not exit normally: %v", err) // the command line may hold secrets: not quoted
}

// canonicalizeMode is CanonicalizeHostname: "false", "true" or "always".
func (r *reader) canonicalizeMode() string {
	if r.s.canonicalize == nil {
		return "false"
	}
	return *r.s.canonicalize
}

// canonicalize applies CanonicalizeHostname to name as ssh's
// resolve_canonicalize, without CNAME rules.
func (r *reader) canonicalize(name *string) error {
	s := &r.s
	mode := r.canonicalizeMode()
	if mode == "false" {
		return nil
	}
	direct := (s.proxyCommand == nil || strings.EqualFold(*s.proxyCommand, "none")) && (s.jumpHost == nil || strings.EqualFold(*s.jumpHost, "none"))
	if !direct && mode != "always" {
		return nil
	}
	lookup := r.o.LookupHost
	if lookup == nil {
		lookup = func(ctx context.Context, n string) bool {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupHost(ctx, n)
			return err == nil && len(addrs) > 0
		}
	}
	fallback := s.canonFallback == nil || *s.canonFallback
	notFound := func() error {
		if !fallback {
			return fmt.Errorf("sshconfig: could not resolve host %q (CanonicalizeHostname, CanonicalizeFallbackLocal no)", *name)
		}
		return nil
	}
	if strings.HasSuffix(*name, ".") {
		if lookup(r.ctx, *name) {
			*name = strings.TrimSuffix(*name, ".")
			return nil
		}
		return notFound()
	}
	maxDots := 1
	if s.canonMaxDots != nil {
		maxDots = *s.canonMaxDots
	}
	if strings.Count(*name, ".") > maxDots {
		return nil
	}
	for _, d := range s.canonDomains {
		if strings.EqualFold(d, "none") {
			break
		}
		full := *name + "." + d + "."
		if lookup(r.ctx, full) {
			*name = strings.TrimSuffix(full, ".")
			return nil
		}
	}
	return notFound()
}

// finish fills in ssh's defaults and expands what ssh -G prints expanded.
func (r *reader) finish(name string) (*Config, error) {
	s := &r.s
	c := r.cfg
	c.Host, c.HostName = r.originalHost, name
	c.Port = 22
	if s.port != nil {
		c.Port = *s.port
	}
	c.AddressFamily = deref(s.addressFamily, "any")
	c.BatchMode = derefBool(s.batchMode)
	c.ExitOnForwardFailure = derefBool(s.exitOnFwdFail)
	c.GatewayPorts = derefBool(s.gatewayPorts)
	c.IdentitiesOnly = derefBool(s.identitiesOnly)
	c.ControlMaster = deref(s.controlMaster, "false")
	c.StrictHostKeyChecking = deref(s.strict, "ask")
	c.CanonicalizeHostname = r.canonicalizeMode()
	c.PreferredAuthentications = deref(s.preferredAuth, "")
	c.NumberOfPasswordPrompts = 3
	if s.passwordPrompts != nil {
		c.NumberOfPasswordPrompts = *s.passwordPrompts
	}
	c.ServerAliveCountMax = 3
	if s.aliveCountMax != nil {
		c.ServerAliveCountMax = *s.aliveCountMax
	}
	if s.aliveInterval != nil && *s.aliveInterval > 0 {
		c.ServerAliveInterval = *s.aliveInterval
	}
	c.ConnectTimeout = -1
	if s.connectTimeout != nil {
		c.ConnectTimeout = *s.connectTimeout
	}
	if s.hostKeyAlias != nil {
		c.HostKeyAlias = LowerASCII(*s.hostKeyAlias)
	}
	if s.proxyCommand != nil && !strings.EqualFold(*s.proxyCommand, "none") {
		c.ProxyCommand = *s.proxyCommand
	}
	jump := ""
	// As readconf.c: only "ProxyJump none" itself is no jump (its port
	// is 0, where a parsed hop's is -1 or more); the last hop of
	// "h,none" is a host named none, reached through h.
	if s.jumpHost != nil && !(*s.jumpHost == "none" && s.jumpUser == "" && s.jumpPort == 0) {
		jump = *s.jumpHost
		c.ProxyJump = formatJump(s.jumpExtra, s.jumpUser, jump, s.jumpPort)
	}

	c.set = map[string]bool{
		"user": s.user != nil, "port": s.port != nil, "hostname": s.hostName != nil,
		"addressfamily": s.addressFamily != nil, "batchmode": s.batchMode != nil,
		"exitonforwardfailure": s.exitOnFwdFail != nil, "gatewayports": s.gatewayPorts != nil,
		"identitiesonly": s.identitiesOnly != nil, "controlmaster": s.controlMaster != nil,
		"stricthostkeychecking": s.strict != nil, "serveralivecountmax": s.aliveCountMax != nil,
		"serveraliveinterval": s.aliveInterval != nil, "connecttimeout": s.connectTimeout != nil,
		"controlpath": s.controlPath != nil, "hostkeyalias": s.hostKeyAlias != nil,
		"identityagent": s.identityAgent != nil, "identityfile": len(s.identityFiles) > 0,
		"certificatefile": len(s.certificateFiles) > 0, "globalknownhostsfile": s.globalKnownHosts != nil,
		"userknownhostsfile": s.userKnownHosts != nil, "proxycommand": s.proxyCommand != nil,
		"proxyjump": s.jumpHost != nil, "preferredauthentications": s.preferredAuth != nil,
		"numberofpasswordprompts": s.passwordPrompts != nil,
	}
	t := r.baseTokens()
	t.H, t.P, t.J = name, strconv.Itoa(c.Port), jump
	t.K = r.originalHost
	if c.HostKeyAlias != "" {
		t.K = c.HostKeyAlias
	}
	c.User = r.o.LocalUser
	if s.user != nil {
		c.User = *s.user
		if !r.userLiteral {
			u, err := t.Expand(*s.user, UserTokens, false, true)
			if err != nil {
				return nil, fmt.Errorf("sshconfig: User %q: %w", *s.user, err)
			}
			c.User = u
		}
	}
	t.R = c.User
	t.C = ConnectionHash(t.Ll, t.H, t.P, t.R, t.J)
	c.Tokens = t

	for _, f := range s.identityFiles {
		c.IdentityFiles = append(c.IdentityFiles, f.path)
	}
	if len(c.IdentityFiles) == 0 {
		c.IdentityFilesDefault = true
		c.IdentityFiles = []string{"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa"}
	}
	for _, f := range s.certificateFiles {
		c.CertificateFiles = append(c.CertificateFiles, f.path)
	}
	c.GlobalKnownHostsFiles = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	if s.globalKnownHosts != nil {
		c.GlobalKnownHostsFiles = []string{}
		if !strings.EqualFold(s.globalKnownHosts[0], "none") {
			c.GlobalKnownHostsFiles = s.globalKnownHosts
		}
	}
	ukh := []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	if s.userKnownHosts != nil {
		ukh = s.userKnownHosts
	}
	c.UserKnownHostsFiles = []string{}
	if !strings.EqualFold(ukh[0], "none") {
		for _, f := range ukh {
			p, err := t.ExpandPath(f)
			if err != nil {
				return nil, fmt.Errorf("sshconfig: UserKnownHostsFile %q: %w", f, err)
			}
			c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, p)
		}
	}
	if s.controlPath != nil && !strings.EqualFold(*s.controlPath, "none") {
		p, err := t.ExpandPath(*s.controlPath)
		if err != nil {
			return nil, fmt.Errorf("sshconfig: ControlPath %q: %w", *s.controlPath, err)
		}
		c.ControlPath = p
	}
	if s.identityAgent != nil {
		p, err := t.ExpandPath(*s.identityAgent)
		if err != nil {
			return nil, fmt.Errorf("sshconfig: IdentityAgent %q: %w", *s.identityAgent, err)
		}
		c.IdentityAgent = p
	}
	return c, nil
}

// formatJump prints ProxyJump as ssh -G: the hops before the last as
// written, then the last one's user, host (bracketed when numeric) and
// port.
func formatJump(extra, user, host string, port int) string {
	var b strings.Builder
	if extra != "" {
		b.WriteString(extra + ",")
	}
	if user != "" {
		b.WriteString(user + "@")
	}
	numeric := strings.Contains(host, ":") || strings.Trim(host, "1234567890.") == ""
	if numeric {
		b.WriteString("[" + host + "]")
	} else {
		b.WriteString(host)
	}
	if port > 0 {
		b.WriteString(":" + strconv.Itoa(port))
	}
	return b.String()
}

func deref(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func derefBool(p *bool) bool { return p != nil && *p }

// isAddr reports whether s is an IP address, which ssh neither lowercases
// nor canonicalizes.
func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// strtonum parses a decimal integer in [min, max] as OpenSSH's strtonum
// (strtoll: leading white space and a sign are allowed, nothing after the
// digits).
func strtonum(s string, min, max int64) (int64, error) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if neg {
		n = -n
	}
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%q is out of range %d-%d", s, min, max)
	}
	return n, nil
}

// A2Port parses a port as OpenSSH's a2port: a decimal number from 0 to
// 65535 (leading white space and a sign allowed, as strtonum takes them),
// or else the name of a TCP service this machine knows, matched as
// getservbyname matches it (lookupService), as in `Port ssh` or
// `-L 8080:db:http`.
func A2Port(s string) (int, error) {
	n, err := strtonum(s, 0, 65535)
	if err == nil {
		return int(n), nil
	}
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return 0, err
	}
	if p, ok := lookupService(s); ok {
		return p, nil
	}
	if isNumber(s) {
		return 0, err // out of range
	}
	return 0, fmt.Errorf("%q is not a number or a known service", s)
}

// isNumber reports whether s is a decimal number as strtonum reads it:
// leading white space, a sign, digits.
func isNumber(s string) bool {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	if t != "" && (t[0] == '+' || t[0] == '-') {
		t = t[1:]
	}
	return t != "" && strings.Trim(t, "0123456789") == ""
}

// parsePort parses a port as OpenSSH's a2port (A2Port), 1 to 65535.
func parsePort(s string) (int, error) {
	n, err := A2Port(s)
	if err != nil && !isNumber(s) {
		return 0, fmt.Errorf("port %w", err)
	}
	if err != nil || n < 1 {
		return 0, fmt.Errorf("port %q is out of range 1-65535", s)
	}
	return n, nil
}

// parseTime parses a time as OpenSSH's convtime (in its later form, which
// takes decimals): seconds, or numbers each with a unit s, m, h, d or w
// (1m30s); whole seconds.
func parseTime(s string) (int64, bool) {
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
			unit = s[0] | 0x20
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

// validEnvName reports whether s is a valid environment variable name, as
// OpenSSH's valid_env_name: letters, digits and '_'.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ValidHostName refuses a host name as OpenSSH's ssh_valid_hostname: empty,
// starting with '-', or holding a space, a control character or one of
// '`"$\;&<>|(){},.
func ValidHostName(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if h[0] == '-' {
		return fmt.Errorf("host name %q starts with '-'", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if strings.IndexByte("'`\"$\\;&<>|(){},", c) >= 0 || c == ' ' || (c >= '\t' && c <= '\r') || c < 0x20 || c == 0x7f {
			return fmt.Errorf("host name %q contains an invalid character", h)
		}
	}
	return nil
}

// ReadCommandLine reads lines as ssh -o lines alone, without any file,
// and returns what they set (see Config.IsSet): the first error is a
// keyword unknown to ssh, a bad value, or Host, Match or Include.
func ReadCommandLine(lines []string) (*Config, error) {
	return Resolve("localhost", Options{ConfigFile: "none", CommandLine: lines, Home: "/", LocalUser: "nobody", NoExec: true})
}

// LineKeyword returns the lowercased keyword of a config line and the rest
// of the line after it (and after one '='), as ssh splits them.
func LineKeyword(line string) (keyword, rest string) {
	kw, rest, _, _ := splitLine(line)
	return kw, rest
}
