package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/sshconfig"
)

// Exit codes.
const (
	exitOK         = 0   // clean shutdown (SIGINT, SIGTERM once the forwards are up), -h, -V, demo
	exitError      = 1   // any other error (the demo failed, ...)
	exitUsage      = 2   // bad command line
	exitForward    = 3   // a forward could not be set up at start, or was lost for good (ExitOnForwardFailure=yes)
	exitConnection = 255 // connecting, host key or authentication failed at start, as ssh, or interrupted while connecting
)

// helpText is the help after the usage line; the -o keys come from the
// list the config reader uses.
var helpText = strings.Replace(helpTemplate, "@CONFIGKEYS@\n", configKeysHelp(), 1)

const helpTemplate = `
sshdial keeps SSH tunnels up, with ssh's syntax. It never runs a remote
command: it is always "ssh -N".

Forwards (each may be given several times):
  -L [bind:]port:host:hostport   listen here, connect to host:hostport from the SSH server
  -L [bind:]port:/remote.sock    ... to a unix socket on the server (also /local.sock:host:hostport)
  -R [bind:]port:host:hostport   the SSH server listens, connections come to host:hostport here
  -R [bind:]port:/local.sock     ... to a unix socket here (also /remote.sock:host:hostport)
  -R [bind:]port                 the SSH server listens; a SOCKS4/5 proxy here serves those
                                 connections, dialing from here
  -D [bind:]port                 SOCKS5 and SOCKS4a proxy; names are resolved by the SSH server
  --http-proxy [bind:]port       HTTP CONNECT proxy (for HTTPS_PROXY, curl -x, browsers)
  -W host:port                   standard input and output are one tunnel to host:port
                                 (or -W /socket) from the SSH server, as ssh -W: for
                                 ProxyCommand; alone, exits when the target closes
Local listeners bind 127.0.0.1 unless a bind address is given ("*" or empty:
every interface; -g makes that the default). -R binds the server's loopback
unless a bind address is given (the server's GatewayPorts decides).

Connection:
  destination        [user@]host[:port], ssh://[user@]host[:port] or a Host of ~/.ssh/config
  -p port, -l user   as ssh: the first of -l, -o User and the destination's
                     user@ wins, and the first of -p, -o Port and its :port
  -4, -6             IPv4 or IPv6 only: for the SSH server and for local
                     listeners (which then bind 127.0.0.1 or ::1)
  -i identity_file   offered before the config's IdentityFile (ssh-agent keys too);
                     an encrypted one's passphrase is asked on the terminal
                     (never with -o BatchMode=yes) and kept for reconnects;
                     a password or keyboard-interactive code (TOTP, Duo) is
                     asked there too, but only for the first connection
  -J jump[,jump]     ProxyJump; -J none ignores the config's
  -F configfile      instead of ~/.ssh/config and /etc/ssh/ssh_config
                     (-F none: no config file)
  -S ctl_path        ControlPath, as ssh -S (-S none: no sharing): -L, -D,
                     --http-proxy and -W tunnels go through the OpenSSH
                     ControlMaster (ssh -M) listening there, with no login of
                     their own; with none answering (logged), and for -R,
                     sshdial logs in by itself. The config's ControlPath
                     works the same unless its ControlMaster is yes or ask
                     (then, as ssh, no master is used); sshdial never becomes
                     a master. -L and -D connections are handed to the
                     master, which reads and writes them itself; -D then
                     answers at once, as ssh -D
  -o Key=Value       a config line, read before the config files (its value
                     wins), as ssh -o ("-o 'Key Value'" too). The keys sshdial uses:
@CONFIGKEYS@
                     (Host, Match and Include in files only.) Other keys ssh
                     knows are accepted and ignored; unknown keys are an
                     error. Match exec commands run, as in ssh. -o, -i and -J
                     apply to the destination, not to its jump hosts.
                     StrictHostKeyChecking no records unknown host keys as
                     accept-new does, with a warning; a changed key is refused
                     whatever the setting (ssh goes on with forwarding disabled).
  -G                 print the configuration evaluated for the destination
                     as ssh -G (the keys above), and exit
  -N -T -n -C        accepted and ignored (always -N; no compression)

Operation:
  -v, -vv            per-tunnel events; -vv adds the proxies' handshakes
  -q                 errors only
  --status interval  write the status summary to stderr every interval (e.g. 30s);
                     on unix SIGUSR1 writes it at once
  --grace duration   on SIGINT or SIGTERM, stop listening and let open tunnels
                     finish for this long (default 10s); a second signal ends them
  -f                 go to the background once the forwards are up, as ssh -f
                     (passphrases are asked first; a failure before that is
                     the exit code; output then goes to /dev/null, stderr
                     not with -v); not on Windows
  -V                 version;  -h  this help
  sshdial demo       a tour on an embedded SSH server (loopback only)

Keepalives are on (ServerAliveInterval 15s, ServerAliveCountMax 3 unless set).
A lost SSH connection is made again when a tunnel needs it; -L, -D and
--http-proxy keep listening meanwhile, and new connections wait up to
ConnectTimeout (default 30s) for it, then are closed. -R forwards are
requested again after a reconnect (a refused one for three minutes, while
the lost session may hold its port). A forward that cannot be set up at
start, or a -R forward still refused after that, is an error
(exit 3), as with ExitOnForwardFailure=yes; with -o ExitOnForwardFailure=no
it is logged, and one that failed at start is retried (one refused after a
reconnect is not: the status shows it failed).

Environment: GOGC is 400 unless set (the Go default is 100: set GOGC=100
for a smaller heap, or GOMEMLIMIT to bound it); GOMAXPROCS as for any Go
program.

Exit codes: 0 clean shutdown; 1 other error; 2 bad command line;
3 a forward could not be set up at start, or a -R forward was lost for
good after a reconnect; 255 connection, host key or authentication failure at
start (as ssh), or a signal before the forwards were up.
`

func main() {
	tuneGC()
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	hurry := make(chan struct{})
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(hurry)
	}()
	os.Exit(runWith(ctx, hurry, os.Args[1:], os.Stdout, os.Stderr))
}

// tuneGC collects garbage less often than Go's default unless GOGC is set.
// x/crypto allocates a fresh buffer for every SSH packet it receives, up to
// 32 KiB each, so a busy tunnel makes garbage as fast as it moves data
// while the live heap stays small: with the default, the collector runs
// every few megabytes of traffic. 400 trades a few megabytes of heap for
// a fraction of that work (BENCHMARKS.md has the figures).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// run runs sshdial with args until ctx ends, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, nil, args, stdout, stderr)
}

// testReady, when set by tests, is called once the forwards are set up.
var testReady func(s *session)

func runWith(ctx context.Context, hurry <-chan struct{}, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "sshdial: internal error: %v\n%s", r, debug.Stack())
			code = exitError
		}
	}()
	if len(args) > 0 && args[0] == "demo" {
		if len(args) > 1 {
			fmt.Fprintf(stderr, "sshdial: demo takes no arguments\n%s", usageLine)
			return exitUsage
		}
		return runDemo(ctx, stdout, stderr)
	}
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "sshdial: %v\n%sRun 'sshdial -h' for help.\n", err, usageLine)
		return exitUsage
	}
	switch {
	case o.help:
		fmt.Fprint(stdout, usageLine, helpText)
		return exitOK
	case o.version:
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	if o.dump {
		rc, err := sshdial.ResolveConfig(ctx, o.destination, connectOptions(o, nil)...)
		if err != nil {
			fmt.Fprintf(stderr, "sshdial: %s\n", strings.TrimPrefix(err.Error(), "sshdial: "))
			return exitConnection
		}
		rc.WriteTo(stdout)
		return exitOK
	}
	if o.background && !inBackground() {
		return goBackground(ctx, args, stderr)
	}
	logger := newLogger(stderr, o)

	copts := connectOptions(o, logger)
	more, err := configure(ctx, o, copts)
	if err != nil {
		fmt.Fprintf(stderr, "sshdial: %s\n", strings.TrimPrefix(err.Error(), "sshdial: "))
		return exitConnection
	}
	copts = append(copts, more...)
	var prompts *prompter
	if !o.batch {
		if prompts = newPrompter(); prompts != nil {
			copts = append(copts, sshdial.WithPassphrase(prompts.passphrase),
				sshdial.WithKeyboardInteractive(prompts.challenge), sshdial.WithPassword(prompts.password(o.login)))
			defer prompts.close()
		}
	}
	timeout := 30 * time.Second
	if o.connectTimeout > 0 {
		timeout = o.connectTimeout
	}
	connectCtx, cancel := context.WithTimeout(ctx, timeout)
	if prompts != nil {
		// A prompt must not hold Connect past ^C or ConnectTimeout.
		context.AfterFunc(connectCtx, prompts.stop)
	}
	d, err := sshdial.Connect(connectCtx, o.destination, copts...)
	cancel()
	if prompts != nil {
		prompts.stop() // reconnects never ask
	}
	if err != nil {
		if ctx.Err() != nil {
			// Not a clean shutdown: nothing was forwarded, and a script's
			// `sshdial ... && next` must not go on (ssh dies of the signal).
			fmt.Fprintln(stderr, "sshdial: interrupted while connecting")
			return exitConnection
		}
		fmt.Fprintf(stderr, "sshdial: %s\n", strings.TrimPrefix(err.Error(), "sshdial: "))
		return exitConnection
	}
	if o.stdio != nil {
		return runStdio(ctx, d, *o.stdio, timeout, stdin, stdout, stderr)
	}
	s := newSession(o, d, logger)
	startCtx, cancel := context.WithTimeout(ctx, s.dialWait)
	err = s.start(startCtx)
	cancel()
	if err != nil {
		// The cause first: the shutdown's log lines are not it.
		fmt.Fprintf(stderr, "sshdial: %v\n", err)
		var fe *forwardError
		if errors.As(err, &fe) && errors.Is(err, sshdial.ErrForwardRefused) {
			fmt.Fprintln(stderr, "sshdial: (the server refused the remote forward; -o ExitOnForwardFailure=no keeps sshdial running and retrying)")
		}
		s.shutdown(nil)
		return exitForward
	}
	if testReady != nil {
		testReady(s)
	}
	if o.background {
		logger.Info("going to the background", "pid", os.Getpid())
		if err := backgroundReady(o.verbose > 0); err != nil {
			fmt.Fprintf(stderr, "sshdial: %v\n", err)
			s.shutdown(nil)
			return exitError
		}
	}

	statusSig, stopSig := notifyStatus()
	defer stopSig()
	var tick <-chan time.Time
	if o.statusEvery > 0 {
		t := time.NewTicker(o.statusEvery)
		defer t.Stop()
		tick = t.C
	}
	var failed *forwardError
	for ctx.Err() == nil && failed == nil {
		select {
		case <-ctx.Done():
		case failed = <-s.failed:
			fmt.Fprintf(stderr, "sshdial: %v\n", failed)
			fmt.Fprintln(stderr, "sshdial: (the forward is lost for good; -o ExitOnForwardFailure=no keeps sshdial running without it)")
		case <-statusSig:
			s.writeStatus(stderr)
		case <-tick:
			s.writeStatus(stderr)
		}
	}
	logger.Info("shutting down")
	s.shutdown(hurry)
	if o.verbose > 0 || o.statusEvery > 0 {
		s.writeStatus(stderr)
	}
	logger.Info("stopped")
	if failed != nil {
		return exitForward
	}
	return exitOK
}

// connectOptions maps the command line onto Connect's options: -o, -i,
// -J, -4, -6 and -g become config lines, as in ssh.
func connectOptions(o *options, logger *slog.Logger) []sshdial.ConnectOption {
	var opts []sshdial.ConnectOption
	if logger != nil {
		opts = append(opts, sshdial.WithLogger(logger))
	}
	if o.configFile != nil {
		opts = append(opts, sshdial.WithConfigFile(*o.configFile))
	}
	if systemConfigFile != nil {
		opts = append(opts, sshdial.WithSystemConfigFile(*systemConfigFile))
	}
	opts = append(opts, sshdial.WithConfigLines(o.familyLines()...))
	if o.user != "" {
		opts = append(opts, sshdial.WithUser(o.user))
	}
	if o.port != 0 {
		opts = append(opts, sshdial.WithPort(o.port))
	}
	if o.family != "" {
		opts = append(opts, sshdial.WithAddressFamily(o.family)) // the jump hosts' too
	}
	return opts
}

// systemConfigFile, when set (by tests), replaces /etc/ssh/ssh_config.
var systemConfigFile *string

// configure evaluates the configuration for the destination and sets what
// the command takes from it: BatchMode, ConnectTimeout,
// ExitOnForwardFailure (yes unless set), GatewayPorts, AddressFamily for
// the listeners. It returns the options that make Connect use that
// evaluation (so Match exec commands run once), and, for
// StrictHostKeyChecking=no given with -o, turn host key checks off, as in
// ssh (a config file's no is taken as accept-new).
func configure(ctx context.Context, o *options, copts []sshdial.ConnectOption) ([]sshdial.ConnectOption, error) {
	rc, err := sshdial.ResolveConfig(ctx, o.destination, copts...)
	if err != nil {
		return nil, err
	}
	first := func(key string) string {
		if v := rc.Get(key); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	// As ssh's prompt: the host is HostKeyAlias when set.
	loginHost := first("hostkeyalias")
	if loginHost == "" {
		loginHost = first("hostname")
	}
	o.login = first("user") + "@" + loginHost
	o.batch = first("batchmode") == "yes"
	o.gatewayPorts = first("gatewayports") == "yes"
	o.exitOnFwdFail = !rc.IsSet("exitonforwardfailure") || first("exitonforwardfailure") == "yes"
	if n, err := strconv.Atoi(first("connecttimeout")); err == nil && n > 0 {
		o.connectTimeout = time.Duration(n) * time.Second
	}
	if f := first("addressfamily"); f != "any" && o.family == "" {
		o.family = f
	}
	if cl, err := sshconfig.ReadCommandLine(o.familyLines()); err == nil && cl.IsSet("stricthostkeychecking") && cl.StrictHostKeyChecking == "false" {
		o.strictNo = true
	}
	more := []sshdial.ConnectOption{sshdial.WithResolvedConfig(rc)}
	if o.strictNo {
		more = append(more, sshdial.WithStrictHostKeyChecking("no"))
	}
	return more, nil
}

// configKeysHelp lists the config keys sshdial uses for the help, wrapped.
func configKeysHelp() string {
	const indent = "                       "
	var b strings.Builder
	line := indent
	for i, k := range sshdial.ConfigKeys() {
		w := k.Name
		if i < len(sshdial.ConfigKeys())-1 {
			w += ","
		}
		if len(line)+1+len(w) > 80 && line != indent {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
	return b.String()
}

func newLogger(w io.Writer, o *options) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case o.quiet:
		level = slog.LevelError
	case o.stdio != nil && o.verbose == 0:
		level = slog.LevelWarn // as a ProxyCommand, where ssh shows stderr
	case o.verbose > 0:
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func version() string {
	v := "(devel)"
	goVersion := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 && v == "(devel)" {
				v = "(devel " + s.Value[:12] + ")"
			}
		}
	}
	return fmt.Sprintf("sshdial %s %s", v, goVersion)
}
