package sshdial

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/sshdial/sshdial/internal/sshconfig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/proxy"
)

// Connect connects to the SSH server named by destination, as `ssh -N`
// would, and returns a Dialer that owns the SSH connection: it keeps it
// alive, makes it again when it is lost, and closes it on Close.
//
// destination is what a user types after ssh: [user@]host[:port],
// ssh://[user@]host[:port] (read as ssh reads it: the user, up to the first
// '@', percent-decoded; the host a domain name or IPv4 address; a password
// is refused), or a Host alias of ~/.ssh/config. The config
// files, ~/.ssh/config then /etc/ssh/ssh_config (WithConfigFile replaces
// both), are read as OpenSSH reads them: Host patterns, every Match
// criterion (Match exec runs its command through the shell, as ssh does,
// unless WithMatchExec(false)), Include, and the keys ConfigKeys lists
// (ProxyCommand: see WithProxyCommand for how it is run). ResolveConfig
// shows the result; options override it.
//
// The server's host key is checked against the known_hosts files, with the
// host key algorithms ordered by what they hold for the host. An unknown
// key is refused (a *HostKeyError matching ErrHostKeyUnknown that names the
// key's fingerprint and how to add it) unless StrictHostKeyChecking is
// accept-new or no, which record it (and log that they did). A changed key,
// a @revoked one, and a host certificate its trusted authority did not
// issue for the host are always refused (ErrHostKeyChanged), whatever
// StrictHostKeyChecking says: this is stricter than ssh(1), which goes on
// through a changed key with forwarding disabled when it is no.
//
// Authentication offers, as OpenSSH does, the keys of ssh-agent, the
// identity files (by default ~/.ssh/id_rsa, id_ecdsa and id_ed25519, where
// they exist) with their certificates, encrypted keys through WithPassphrase,
// keyboard-interactive (one-time codes) only when WithKeyboardInteractive
// answers it, and a password only when WithPassword gives one. A failure matches
// ErrAuthFailed and lists what was tried, never a secret.
//
// Every connection, the first included, is bounded by ConnectTimeout or
// WithConnectTimeout, else 30 seconds: the TCP connect, the SSH handshake
// and authentication of every hop together. ctx bounds the first one too;
// Connect returns its error. A server that accepts the TCP connection but
// never speaks SSH fails with an error that says so. Later connections are
// made when a dial needs one (see NewPool for how).
//
// Keepalives are on by default: every ServerAliveInterval (15 seconds when
// unset), and the SSH connection is taken as dead, its Conns and dials in
// flight failing with ErrServerNotResponding, once ServerAliveCountMax
// (default 3) intervals pass without an answer. WithKeepalive overrides
// this.
func Connect(ctx context.Context, destination string, opts ...ConnectOption) (*Dialer, error) {
	if ctx == nil {
		return nil, errors.New("sshdial: Connect: nil context")
	}
	d, err := newConnectDialer(ctx, destination, opts)
	if err != nil {
		return nil, err
	}
	if found, err := d.findMaster(ctx); err != nil {
		return nil, err
	} else if found {
		return d, nil // no login of its own until a dial needs one
	}
	client, err := d.dialSSH(ctx)
	if err != nil {
		d.close(false) // never handed out: its close is no news
		return nil, err
	}
	d.mu.Lock()
	d.install(d.slots[0], client)
	d.mu.Unlock()
	return d, nil
}

// DialClient connects to the SSH server named by destination exactly as
// Connect does (ssh_config, agent, identity files, known_hosts, jump hosts,
// ProxyCommand, ConnectTimeout; the same options and errors) and returns
// the *ssh.Client, for what a Dialer does not do: sessions that run
// commands, SFTP, agent forwarding.
//
// The caller owns the client: closing it closes the connections to the
// jump hosts too. Nothing watches it: no keepalives are sent (whatever
// ServerAliveInterval says) and a lost connection is not made again; a
// Dialer does both. ControlPath and ControlMaster are not used: the client
// is always a login of its own. WithPool, WithKeepalive, WithControl,
// WithControlPath and WithOriginator are about Dialers and are errors here.
func DialClient(ctx context.Context, destination string, opts ...ConnectOption) (*ssh.Client, error) {
	if ctx == nil {
		return nil, errors.New("sshdial: DialClient: nil context")
	}
	probe := newDialer(opts) // the options only, to refuse a Dialer's
	probe.cancel()
	var dialerOnly []string
	if probe.connect != nil && probe.connect.poolSize != 0 {
		dialerOnly = append(dialerOnly, "WithPool")
	}
	if probe.keepaliveSet {
		dialerOnly = append(dialerOnly, "WithKeepalive")
	}
	if probe.control != nil {
		dialerOnly = append(dialerOnly, "WithControl")
	}
	if probe.originator != nil {
		dialerOnly = append(dialerOnly, "WithOriginator")
	}
	if len(dialerOnly) > 0 && probe.optionErr == nil {
		return nil, fmt.Errorf("sshdial: DialClient: %s configure a Dialer, not a client", strings.Join(dialerOnly, ", "))
	}
	// Sharing off, as WithControlPath("none"): the config's ControlPath is
	// not looked at (nor logged about).
	noSharing := connectOption(func(d *Dialer) { d.control = &controlState{} })
	d, err := newConnectDialer(ctx, destination, append(slices.Clip(opts), noSharing))
	if err != nil {
		return nil, err
	}
	client, err := d.dialSSH(ctx)
	d.cancel()
	if err != nil {
		return nil, err
	}
	return client, nil
}

// connectSettings are what the options of Connect set.
type connectSettings struct {
	clientConfig   *ssh.ClientConfig // for the destination, used as given
	configFile     *string           // nil: ~/.ssh/config, then the system's
	configLines    []string          // WithConfigLines
	systemConfig   *string           // WithSystemConfigFile; nil: /etc/ssh/ssh_config
	noMatchExec    bool              // WithMatchExec(false)
	resolved       *ResolvedConfig   // WithResolvedConfig
	user           string            // WithUser; "": the destination's or the config's
	port           int               // WithPort; 0: the destination's or the config's
	jumps          []string
	jumpsSet       bool    // WithJump was given (with no hops: none)
	proxyCommand   *string // WithProxyCommand's command, if given
	poolSize       int
	passphrase     func(ctx context.Context, file string) ([]byte, error)
	password       func(ctx context.Context) (string, error)
	challenge      func(ctx context.Context, c Challenge) ([]string, error)
	identities     []string // tried before the config's identity files
	knownHosts     []string // replace UserKnownHostsFile
	knownHostsNone bool     // WithKnownHostsFile("none"): no user file
	agentSocket    *string  // nil: IdentityAgent, or $SSH_AUTH_SOCK
	strict         string   // "": from the config
	timeout        time.Duration
	network        string       // WithAddressFamily: "tcp4" or "tcp6"; "": from the config
	forward        proxy.Dialer // reaches the first hop; nil: a net.Dialer
}

// connectOpts returns d's Connect settings, made on first use.
func (d *Dialer) connectOpts() *connectSettings {
	if d.connect == nil {
		d.connect = &connectSettings{}
	}
	return d.connect
}

// WithClientConfig makes Connect log in to the destination with config as
// given: its user (when not empty), authentication and host key callback
// replace what the config files would set up. Jump hosts are still set up
// from the config files and the other options.
//
// The options that config replaces are errors beside it rather than
// silently ignored. Always: WithPassword (the destination's only), a
// WithUser where config has a User, and WithConfigLines lines (the
// destination's only) about authentication, host keys, or User where
// config has one. With no jump host for them to apply to: WithIdentityFile,
// WithKnownHostsFile, WithAgentSocket, WithPassphrase,
// WithKeyboardInteractive and WithStrictHostKeyChecking.
func WithClientConfig(config *ssh.ClientConfig) ConnectOption {
	return connectOption(func(d *Dialer) {
		if config == nil {
			d.optionErr = errors.New("sshdial: WithClientConfig: nil config")
			return
		}
		d.connectOpts().clientConfig = config
	})
}

// WithUser makes Connect log in to the destination as user, as ssh -l
// does: it wins over the destination's user@ and over User in the config
// files and WithConfigLines. Match user and %r see it. Jump hosts keep
// their own users.
func WithUser(user string) ConnectOption {
	return connectOption(func(d *Dialer) {
		if user == "" || strings.ContainsFunc(user, unicode.IsControl) {
			d.optionErr = errors.New("sshdial: WithUser: want a user name without control characters")
			return
		}
		d.connectOpts().user = user
	})
}

// WithPort makes Connect reach the destination's SSH server on port, as
// ssh -p does: it wins over the destination's :port and over Port in the
// config files and WithConfigLines. Jump hosts keep their own ports.
func WithPort(port int) ConnectOption {
	return connectOption(func(d *Dialer) {
		if port < 1 || port > 65535 {
			d.optionErr = fmt.Errorf("sshdial: WithPort(%d): want 1 to 65535", port)
			return
		}
		d.connectOpts().port = port
	})
}

// WithConfigFile makes Connect read the ssh_config file at path instead of
// ~/.ssh/config and /etc/ssh/ssh_config, as ssh -F; "" or "none" reads
// none. A file that cannot be read is an error.
func WithConfigFile(path string) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().configFile = &path })
}

// WithJump makes Connect reach the destination through the given jump
// hosts, in order, as ProxyJump does; each is a destination as Connect
// takes it, with its own config, and each hop's host key is verified. It
// replaces ProxyJump from the config file; WithJump() with no hosts
// connects directly.
func WithJump(hosts ...string) ConnectOption {
	return connectOption(func(d *Dialer) {
		cs := d.connectOpts()
		cs.jumps, cs.jumpsSet = hosts, true
	})
}

// WithProxyCommand makes Connect reach the destination as ProxyCommand
// does: command is run through the user's shell ($SHELL, else /bin/sh;
// cmd.exe on Windows) for every SSH connection, with %h, %p, %r, %n and %%
// expanded, and the SSH connection runs over its standard input and
// output; its standard error goes to this process's. The command's exit
// status is in Connect's error when it fails, the command line is not.
// Closing the SSH connection sends the command SIGHUP, and SIGKILL two
// seconds later if it still runs; nothing waits for it. It replaces
// ProxyCommand and ProxyJump from the config file; "none" connects
// directly. It cannot be given with WithJump hosts. An empty command is an
// error.
func WithProxyCommand(command string) ConnectOption {
	return connectOption(func(d *Dialer) {
		if command == "" {
			d.optionErr = errors.New(`sshdial: WithProxyCommand: empty command ("none" connects directly)`)
			return
		}
		d.connectOpts().proxyCommand = &command
	})
}

// WithAddressFamily makes Connect reach the first hop over IPv4 only
// ("inet", as ssh -4), IPv6 only ("inet6", ssh -6) or either ("any"),
// instead of what the config file's AddressFamily says.
func WithAddressFamily(family string) ConnectOption {
	return connectOption(func(d *Dialer) {
		network, ok := addressFamilies[strings.ToLower(family)]
		if !ok {
			d.optionErr = fmt.Errorf("sshdial: WithAddressFamily(%q): want any, inet or inet6", family)
			return
		}
		d.connectOpts().network = network
	})
}

// WithPool lets Connect's Dialer use up to n SSH connections to the
// server, spreading Conns over them, least loaded first (see NewPool): one
// SSH connection is bound to one core on each side, so parallel transfers
// gain from several.
func WithPool(n int) ConnectOption {
	return connectOption(func(d *Dialer) {
		if n < 1 {
			d.optionErr = fmt.Errorf("sshdial: WithPool(%d): want 1 or more", n)
			return
		}
		d.connectOpts().poolSize = n
	})
}

// WithPassphrase gives Connect a way to decrypt encrypted private keys:
// passphrase is called with the key file's path, only when the server would
// accept that key. Without it, encrypted keys are skipped.
//
// ctx is the context of the connection being made, as for
// WithKeyboardInteractive; when it ends, the login goes on without waiting
// for passphrase to return (it should return then too: its result is
// dropped). The passphrase is never logged or put in an error.
func WithPassphrase(passphrase func(ctx context.Context, file string) ([]byte, error)) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().passphrase = passphrase })
}

// WithPassword lets Connect log in to the destination with a password,
// after the keys and keyboard-interactive; password is called when the
// server asks, and again after a refused password, up to
// NumberOfPasswordPrompts times (default 3). An error from password ends
// that method with the error wrapped.
//
// ctx is the context of the connection being made, as for
// WithKeyboardInteractive; when it ends, the login fails with ctx's error
// without waiting for password to return (it should return then too: its
// result is dropped). The password is never logged or put in an error.
func WithPassword(password func(ctx context.Context) (string, error)) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().password = password })
}

// WithKeyboardInteractive lets Connect answer keyboard-interactive
// authentication, which servers use for one-time codes (TOTP, Duo) and for
// PAM's questions, on every hop: the destination and the jump hosts.
// answer is called for each round of questions a server sends, with the
// hop's name and what it asks; it returns one answer per question. A
// server that refuses the answers asks again, up to NumberOfPasswordPrompts
// times (default 3); the method comes after the keys and before a password
// unless PreferredAuthentications says otherwise.
//
// ctx is the context of the connection being made: Connect's for the
// first (bounded by ConnectTimeout when set), ConnectTimeout's for a
// reconnect, which nobody may be there to answer; when it ends, the login
// fails with its error without waiting for answer to return (answer should
// return then too: its answers are dropped). An error from answer ends
// that login attempt with that error (unless another method is left to
// try): a Dialer's reconnect fails, is logged, and the next dial tries
// again. answer may be called from several
// goroutines at once (the hops of a pool). The answers are never logged or
// put in an error.
func WithKeyboardInteractive(answer func(ctx context.Context, c Challenge) ([]string, error)) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().challenge = answer })
}

// WithIdentityFile makes Connect offer the keys in these files (and their
// -cert.pub certificates) before those the config file names. An empty
// path is an error.
func WithIdentityFile(paths ...string) ConnectOption {
	return connectOption(func(d *Dialer) {
		if slices.Contains(paths, "") {
			d.optionErr = errors.New("sshdial: WithIdentityFile: empty path")
			return
		}
		cs := d.connectOpts()
		cs.identities = append(cs.identities, paths...)
	})
}

// WithKnownHostsFile makes Connect check host keys against these files
// instead of UserKnownHostsFile (~/.ssh/known_hosts); with accept-new, new
// keys go to the first. WithKnownHostsFile("none") reads and writes no
// user file, as UserKnownHostsFile none (the GlobalKnownHostsFile is still
// read). An empty path is an error.
func WithKnownHostsFile(paths ...string) ConnectOption {
	return connectOption(func(d *Dialer) {
		if slices.Contains(paths, "") {
			d.optionErr = errors.New(`sshdial: WithKnownHostsFile: empty path ("none" is no file)`)
			return
		}
		cs := d.connectOpts()
		if len(paths) == 1 && paths[0] == "none" {
			cs.knownHosts, cs.knownHostsNone = nil, true
			return
		}
		cs.knownHosts, cs.knownHostsNone = append(cs.knownHosts, paths...), false
	})
}

// WithAgentSocket makes Connect ask the ssh-agent at path for keys instead
// of $SSH_AUTH_SOCK's; "none" uses no agent. An empty path is an error.
func WithAgentSocket(path string) ConnectOption {
	return connectOption(func(d *Dialer) {
		if path == "" {
			d.optionErr = errors.New(`sshdial: WithAgentSocket: empty path ("none" uses no agent)`)
			return
		}
		d.connectOpts().agentSocket = &path
	})
}

// WithStrictHostKeyChecking sets how Connect treats unknown host keys, as
// the ssh_config option does: "yes" refuses them, "accept-new" records them
// in the first known_hosts file and accepts them, "no" does the same with
// a warning logged, and accepts an unknown key even when it cannot be
// recorded. A changed or revoked key is refused whatever the mode (ssh(1)
// with "no" would go on with forwarding disabled).
func WithStrictHostKeyChecking(mode string) ConnectOption {
	return connectOption(func(d *Dialer) {
		switch mode {
		case "yes", "accept-new", "no":
			d.connectOpts().strict = mode
		default:
			d.optionErr = fmt.Errorf("sshdial: WithStrictHostKeyChecking(%q): want yes, accept-new or no", mode)
		}
	})
}

// WithConnectTimeout bounds each connection Connect's Dialer makes, the
// first included, as ConnectTimeout does (the first is bounded by Connect's
// context too); it replaces ConnectTimeout from the config file and the
// default of 30 seconds.
func WithConnectTimeout(timeout time.Duration) ConnectOption {
	return connectOption(func(d *Dialer) {
		if timeout <= 0 {
			d.optionErr = errors.New("sshdial: WithConnectTimeout: want a positive duration")
			return
		}
		d.connectOpts().timeout = timeout
	})
}

// withForward makes Connect reach the first hop through forward.
func withForward(forward proxy.Dialer) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().forward = forward })
}

const (
	defaultAliveInterval  = 15 * time.Second
	defaultConnectTimeout = 30 * time.Second
)

// newConnectDialer resolves destination and the hops before it, and
// returns a Dialer that connects to them on demand. ctx bounds the
// resolution: Match exec commands and canonicalization lookups.
func newConnectDialer(ctx context.Context, destination string, opts []ConnectOption) (*Dialer, error) {
	d := newDialer(opts)
	if d.optionErr != nil {
		return nil, d.optionErr
	}
	cs := d.connectOpts()
	home, _ := os.UserHomeDir()
	localUser := ""
	if u, err := user.Current(); err == nil {
		localUser = u.Username
	}
	// With WithProxyCommand the config's ProxyCommand is not read: ssh
	// expands only the command it runs.
	src := cs.configSource(ctx, home, localUser)
	first := true // the lines of WithConfigLines are the destination's only
	resolve := func(d string) (h *hop, err error) {
		if first {
			first = false
			h, ok, err := cs.destinationHop(d)
			if !ok {
				h, err = src.hop(d, true)
			}
			return checkHopName(h, err)
		}
		return checkHopName(src.hop(d, false))
	}
	own := !cs.jumpsSet
	if cs.proxyCommand != nil {
		if len(cs.jumps) > 0 {
			return nil, errors.New("sshdial: WithJump and WithProxyCommand both given: give one")
		}
		own = false // neither the config's ProxyJump
	}
	hops, err := hopChain(resolve, destination, cs.jumps, own, 0)
	if err != nil {
		return nil, err
	}
	if err := cs.checkClientConfig(len(hops) > 1); err != nil {
		return nil, err
	}
	dest := hops[len(hops)-1]
	for _, h := range hops {
		if len(h.SkippedExec) > 0 {
			d.log().Info("sshdial: Match exec commands not run (WithMatchExec(false)); those Match lines do not apply", "host", h.Alias, "lines", h.SkippedExec)
		}
	}
	if cs.proxyCommand != nil { // nor its ProxyCommand
		if err := dest.setProxyCommand(*cs.proxyCommand); err != nil {
			return nil, fmt.Errorf("sshdial: WithProxyCommand: %w", err)
		}
	}

	d.controlFromConfig(dest.ControlPath, dest.ControlMaster) // WithControl/WithControlPath win

	switch {
	case d.keepaliveSet:
	case dest.KeepaliveOff:
		d.keepaliveInterval = 0
	default:
		interval := dest.ServerAliveInterval
		if interval <= 0 {
			interval = defaultAliveInterval
		}
		count := dest.ServerAliveCountMax
		if count <= 0 {
			count = 3
		}
		d.keepaliveInterval, d.keepaliveTimeout = interval, interval*time.Duration(count)
	}
	if cs.timeout == 0 {
		cs.timeout = cmp.Or(dest.ConnectTimeout, defaultConnectTimeout)
	}
	d.slots = newSlots(max(cs.poolSize, 1))
	d.dialSSH = func(ctx context.Context) (*ssh.Client, error) {
		ctx, cancel := context.WithTimeout(ctx, cs.timeout)
		defer cancel()
		return d.connectHops(ctx, hops, home)
	}
	return d, nil
}

// checkHopName refuses a hop whose host name cannot be one (over 255
// bytes, as DNS allows): it could only fail later, with errors and logs
// that repeat it whole.
func checkHopName(h *hop, err error) (*hop, error) {
	if err == nil && len(h.HostName) > 255 {
		return nil, fmt.Errorf("sshdial: host name %s is longer than 255 bytes", shortAddr(h.HostName))
	}
	return h, err
}

// checkClientConfig reports the options that WithClientConfig would
// silently replace: those of the destination only, and with no jump host
// (jumps false) those of every hop.
func (cs *connectSettings) checkClientConfig(jumps bool) error {
	if cs.clientConfig == nil {
		return nil
	}
	var given []string
	if cs.password != nil {
		given = append(given, "WithPassword")
	}
	if cs.user != "" && cs.clientConfig.User != "" {
		given = append(given, "WithUser")
	}
	if !jumps {
		for _, o := range []struct {
			name string
			set  bool
		}{
			{"WithIdentityFile", len(cs.identities) > 0},
			{"WithKnownHostsFile", len(cs.knownHosts) > 0 || cs.knownHostsNone},
			{"WithAgentSocket", cs.agentSocket != nil},
			{"WithPassphrase", cs.passphrase != nil},
			{"WithKeyboardInteractive", cs.challenge != nil},
			{"WithStrictHostKeyChecking", cs.strict != ""},
		} {
			if o.set {
				given = append(given, o.name)
			}
		}
	}
	// WithConfigLines apply to the destination alone, jump hosts or not.
	for _, line := range cs.configLines {
		kw, _ := sshconfig.LineKeyword(line)
		if clientConfigKeys[kw] || (kw == "user" && cs.clientConfig.User != "") {
			given = append(given, "WithConfigLines("+kw+")")
		}
	}
	if len(given) == 0 {
		return nil
	}
	return fmt.Errorf("sshdial: WithClientConfig replaces what %s would set for the destination: set it in the ssh.ClientConfig instead", strings.Join(given, ", "))
}

// clientConfigKeys are the ssh_config keywords (lowercase) whose values
// WithClientConfig's config replaces for the destination: authentication
// and the host key check.
var clientConfigKeys = map[string]bool{
	"identityfile": true, "certificatefile": true, "identitiesonly": true, "identityagent": true,
	"preferredauthentications": true, "numberofpasswordprompts": true,
	"userknownhostsfile": true, "globalknownhostsfile": true, "stricthostkeychecking": true, "hostkeyalias": true,
}

// maxHops bounds a chain of jump hosts, which a ProxyJump loop would make
// endless.
const maxHops = 10

// hopChain resolves destination and the hosts to jump through before it,
// in the order they are connected to. As with ssh, ProxyJump a,b reaches b
// through a, and a through a's own ProxyJump; the jumps are dest's
// ProxyJump when own is true, else jumps.
func hopChain(resolve func(string) (*hop, error), destination string, jumps []string, own bool, depth int) ([]*hop, error) {
	if depth >= maxHops {
		return nil, fmt.Errorf("sshdial: more than %d jump hosts before %s (a ProxyJump loop?)", maxHops, destinationShown(destination))
	}
	dest, err := resolve(destination)
	if err != nil {
		if depth > 0 {
			return nil, fmt.Errorf("sshdial: jump host %s: %w", destinationShown(destination), err)
		}
		return nil, err
	}
	if own {
		jumps = dest.ProxyJump
	}
	if len(jumps) == 0 {
		return []*hop{dest}, nil
	}
	hops, err := hopChain(resolve, jumps[0], nil, true, depth+1)
	if err != nil {
		return nil, err
	}
	for _, j := range jumps[1:] {
		h, err := resolve(j)
		if err != nil {
			return nil, fmt.Errorf("sshdial: jump host %s: %w", destinationShown(j), err)
		}
		hops = append(hops, h)
	}
	if len(hops) >= maxHops {
		return nil, fmt.Errorf("sshdial: more than %d jump hosts before %s (a ProxyJump loop?)", maxHops, destinationShown(destination))
	}
	return append(hops, dest), nil
}

// destinationShown quotes a destination for a message, with a user part
// that holds a password (passwordUser) shown as "…".
func destinationShown(dest string) string {
	if at, ok := passwordUser(dest); ok {
		return shortAddr("…" + dest[at:])
	}
	return shortAddr(dest)
}

// passwordUser reports whether dest's user part holds ':', a password
// written into an ssh:// URL (ssh://user:secret@host, which ssh takes as
// part of the user name), and where the '@' after it is.
func passwordUser(dest string) (at int, ok bool) {
	at = strings.LastIndexByte(dest, '@')
	return at, at >= 0 && strings.Contains(dest[:at], ":")
}

// connectHops connects to each hop through the one before, and returns the
// client of the last; the clients of the hops before close with it.
func (d *Dialer) connectHops(ctx context.Context, hops []*hop, home string) (*ssh.Client, error) {
	var clients []*ssh.Client
	closeAll := func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
	}
	for i, h := range hops {
		client, err := d.connectHop(ctx, h, clients, i == len(hops)-1, home)
		if err != nil {
			closeAll()
			if len(hops) > 1 {
				return nil, fmt.Errorf("sshdial: hop %d of %d, %s: %w", i+1, len(hops), h.Alias, err)
			}
			return nil, err
		}
		clients = append(clients, client)
	}
	last := clients[len(clients)-1]
	if len(clients) > 1 {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			last.Wait()
			closeAll()
		}()
	}
	return last, nil
}

// connectHop connects to h, through the last of before if any.
func (d *Dialer) connectHop(ctx context.Context, h *hop, before []*ssh.Client, last bool, home string) (*ssh.Client, error) {
	cs := d.connect
	addr := net.JoinHostPort(h.HostName, strconv.Itoa(h.Port))
	var conn net.Conn
	var err error
	switch {
	case len(before) > 0:
		// A hop reached through the one before: its own ProxyCommand,
		// like its own ProxyJump, gives way, as with ssh -J.
		conn, err = New(before[len(before)-1]).DialContext(ctx, "tcp", addr)
	case h.ProxyCommand != "":
		conn, err = startProxyCommand(h.ProxyCommand, h.Alias)
		if err != nil {
			return nil, err
		}
	case cs.forward != nil:
		if cd, ok := cs.forward.(proxy.ContextDialer); ok {
			conn, err = cd.DialContext(ctx, "tcp", addr)
		} else {
			conn, err = cs.forward.Dial("tcp", addr)
		}
	default:
		network := cmp.Or(cs.network, h.Network)
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, network, addr)
		if err == nil {
			conn = QuickAck(conn)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sshdial: connecting to %s: %w", addr, err)
	}

	config, tried, cleanup, err := d.hopConfig(ctx, h, last, home)
	if err != nil {
		conn.Close()
		return nil, err
	}
	var offered ssh.PublicKey
	check := config.HostKeyCallback
	config.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		offered = key
		return check(hostname, remote, key)
	}
	banner := &bannerWatch{Conn: conn}
	client, err := handshake(ctx, banner, addr, withPreferredCiphers(config))
	cleanup()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !banner.received.Load() {
			// As ssh says it: the server took the TCP connection and
			// never sent its version line.
			err = fmt.Errorf("sshdial: connecting to SSH server %s: connection timed out during banner exchange: "+
				"the server accepted the TCP connection but sent no SSH banner (is an SSH server listening there?): %w", addr, context.DeadlineExceeded)
		}
		if tried != nil {
			err = authError(err, tried)
		}
		if _, ok := conn.(*commandConn); ok {
			err = fmt.Errorf("%w (through the ProxyCommand for %s)", err, h.Alias)
		}
		return nil, err
	}
	attrs := []any{"server", addr, "user", config.User}
	if offered != nil {
		attrs = append(attrs, "host_key", offered.Type()+" "+ssh.FingerprintSHA256(offered))
	}
	if tried != nil {
		attrs = append(attrs, "auth", tried.accepted())
	}
	d.log().Info("sshdial: connected", attrs...)
	return client, nil
}

// bannerWatch is a connection being logged in to, which notes whether the
// server sent its version line (a line that starts with "SSH-"): lines
// before it, as a tarpit sends, are no banner for OpenSSH either.
type bannerWatch struct {
	net.Conn
	received atomic.Bool
	matched  int // bytes of "SSH-" matched at the start of the current line; -1 in the middle of one
}

func (b *bannerWatch) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	if b.received.Load() {
		return n, err
	}
	// Read is called by the handshake's goroutine alone until the
	// version line has come.
	for _, c := range p[:n] {
		switch {
		case c == '\n':
			b.matched = 0
		case b.matched >= 0 && c == "SSH-"[b.matched]:
			if b.matched++; b.matched == len("SSH-") {
				b.received.Store(true)
				return n, err
			}
		default:
			b.matched = -1
		}
	}
	return n, err
}

// hopConfig returns the client configuration for h: the caller's for the
// destination if WithClientConfig gave one, else one made from the config
// file and the options. tried records the authentication (nil for the
// caller's config); cleanup runs after the handshake. The agent connection
// behind the methods closes when ctx ends.
func (d *Dialer) hopConfig(ctx context.Context, h *hop, last bool, home string) (*ssh.ClientConfig, *authLog, func(), error) {
	cs := d.connect
	if last && cs.clientConfig != nil {
		c := *cs.clientConfig
		if c.User == "" {
			c.User = h.User
		}
		return &c, nil, func() {}, nil
	}

	agentSocket := h.IdentityAgent
	if cs.agentSocket != nil {
		agentSocket = *cs.agentSocket
	}
	identities := h.IdentityFiles
	if len(cs.identities) > 0 {
		identities = append(append([]string(nil), cs.identities...), h.IdentityFiles...)
	}
	ac := authConfig{
		User:             h.User,
		IdentityFiles:    identities,
		CertificateFiles: h.CertificateFiles,
		IdentitiesOnly:   h.IdentitiesOnly,
		AgentSocket:      agentSocket,
		Home:             home,
		Passphrase:       boundedPassphrase(ctx, cs.passphrase),
	}
	if last {
		ac.Password = boundedPassword(ctx, cs.password)
	}
	if cs.challenge != nil {
		ac.KeyboardInteractive = challengeFunc(ctx, cs.challenge, h.Alias, h.User)
	}
	ac.PreferredAuthentications, ac.NumberOfPasswordPrompts = hopAuthPreferences(h)
	methods, tried, cleanup, err := authMethods(ctx, ac)
	if err != nil {
		return nil, nil, nil, err
	}

	files := h.UserKnownHostsFiles
	switch {
	case cs.knownHostsNone:
		files = nil
	case len(cs.knownHosts) > 0:
		files = cs.knownHosts
	}
	var writeFile string
	if len(files) > 0 {
		writeFile = files[0]
	}
	strict := h.StrictHostKeyChecking
	if cs.strict != "" {
		strict = cs.strict
	}
	// As ssh does, known_hosts names the host host:port, or HostKeyAlias
	// alone.
	name, port := h.HostName, h.Port
	if h.HostKeyAlias != "" {
		name, port = h.HostKeyAlias, 22
	}
	callback, algorithms, err := hostKeyCheck(&d.hostKeys, name, port, append(append([]string(nil), files...), h.GlobalKnownHostsFiles...), writeFile, strict, d.log())
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return &ssh.ClientConfig{
		User:              h.User,
		Auth:              methods,
		HostKeyCallback:   callback,
		HostKeyAlgorithms: algorithms,
	}, tried, cleanup, nil
}

// bounded calls f and returns what it returns, or ctx's error as soon as
// ctx ends: a callback of the caller's that blocks (a prompt nobody
// answers) cannot hold a login past its context. f goes on in its
// goroutine until it returns; its results are then dropped.
func bounded[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// boundedPassphrase is WithPassphrase's callback for a login bounded by
// ctx; nil stays nil.
func boundedPassphrase(ctx context.Context, f func(context.Context, string) ([]byte, error)) func(string) ([]byte, error) {
	if f == nil {
		return nil
	}
	return func(file string) ([]byte, error) {
		return bounded(ctx, func() ([]byte, error) { return f(ctx, file) })
	}
}

// boundedPassword is WithPassword's callback for a login bounded by ctx;
// nil stays nil.
func boundedPassword(ctx context.Context, f func(context.Context) (string, error)) func() (string, error) {
	if f == nil {
		return nil
	}
	return func() (string, error) {
		return bounded(ctx, func() (string, error) { return f(ctx) })
	}
}
