//go:build linux

package sshdial_test

// ProxyCommand against misbehaving commands: commands that ignore SIGHUP, close
// their output but keep running, write garbage, do not exist, flood
// standard error, or die with the SSH server; token errors; secrets of the
// command line in errors and logs; and no process left unreaped (a zombie)
// after Connect fails or the Dialer is closed. Linux only: they read /proc.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// advSecret stands for a secret written in a ProxyCommand line (a token,
// a password for a proxy); it must never appear in an error or a log.
const advSecret = "s3cr3t-in-the-command-line"

// pcSetup is an sshd with a HOME that reaches it as "viacmd", a file the
// wrapped commands append their pids to, and what the Dialer logged.
type pcSetup struct {
	srv     *opensshd.Server
	h       *home
	self    string // the test binary, which RelayMain makes a relay
	pidFile string
	logs    *testutil.SyncBuffer
	stderr  string // the file our standard error goes to during the test
}

func newPCSetup(t *testing.T) *pcSetup {
	srv := opensshd.Start(t)
	h := homeFor(t, srv)
	self, err := os.Executable()
	require.NoError(t, err)
	h.write(t, "config", fmt.Sprintf("Host viacmd\n  HostName 127.0.0.1\n  Port %s\n  User %s\n", portOf(srv.Addr), srv.User))
	s := &pcSetup{srv: srv, h: h, self: self, pidFile: filepath.Join(h.dir, "pids"), logs: &testutil.SyncBuffer{}}
	s.stderr = captureStderr(t)
	return s
}

// captureStderr sends this process's os.Stderr, which ProxyCommands
// inherit, to a file for the rest of the test (so that shells' messages
// and floods stay out of the test's output), and returns the file's name.
func captureStderr(t *testing.T) string {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = f
	t.Cleanup(func() {
		os.Stderr = old
		f.Close()
	})
	return f.Name()
}

// wrap returns a ProxyCommand that records its pid, runs setup in sh, and
// then becomes body (sh words; $0 is %h and $1 is %p).
func (s *pcSetup) wrap(setup, body string) string {
	if setup != "" {
		setup += "; "
	}
	return fmt.Sprintf(`sh -c 'echo $$ >> %s; %sexec %s' %%h %%p`, s.pidFile, setup, body)
}

// relay is the wrap body that relays to the SSH server, with the secret
// among its arguments.
func (s *pcSetup) relay() string {
	return fmt.Sprintf(`%s %s "$0" "$1" %s`, s.self, testutil.RelayCommand, advSecret)
}

func (s *pcSetup) connect(ctx context.Context, command string) (*sshdial.Dialer, error) {
	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return sshdial.Connect(ctx, "viacmd", sshdial.WithProxyCommand(command), sshdial.WithLogger(logger))
}

// pids returns the pids the wrapped commands recorded.
func (s *pcSetup) pids(t *testing.T) []int {
	b, err := os.ReadFile(s.pidFile)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		p, err := strconv.Atoi(f)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

// requireReaped fails unless every recorded process is gone within d: not
// running, and not a zombie that was never waited for.
func (s *pcSetup) requireReaped(t *testing.T, d time.Duration) {
	t.Helper()
	pids := s.pids(t)
	require.NotEmpty(t, pids, "no ProxyCommand recorded its pid")
	require.Eventually(t, func() bool {
		for _, pid := range pids {
			if procState(pid) != "" {
				return false
			}
		}
		return true
	}, d, 20*time.Millisecond, "a ProxyCommand process (of %v) is still there %v after the end", pids, d)
}

// procState returns the state letter of pid (Z for a zombie), or "" when
// there is no such process.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return "?"
	}
	return string(b[i+2])
}

// requireNoSecret fails if the secret is in what an error or the logs say.
func (s *pcSetup) requireNoSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		require.NotContains(t, err.Error(), advSecret, "the command line is in an error")
	}
	require.NotContains(t, s.logs.String(), advSecret, "the command line is in the logs")
}

// TestProxyCommandIgnoringSIGHUPIsKilled: a ProxyCommand that ignores
// SIGHUP and outlives its relaying (a script that relays, then sleeps)
// carries the SSH connection; after Dialer.Close it is killed once its
// grace period is over, and no zombie is left. No log line holds the
// command line.
func TestProxyCommandIgnoringSIGHUPIsKilled(t *testing.T) {
	s := newPCSetup(t)
	script := filepath.Join(s.h.dir, "relay.sh")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(`echo $$ >> %s
trap "" HUP
%s %s "$1" "$2" %s
exec sleep 600
`, s.pidFile, s.self, testutil.RelayCommand, advSecret)), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := s.connect(ctx, "sh "+script+" %h %p")
	require.NoError(t, err)
	requireEchoThrough(t, d)

	// Close does not wait for the command (ssh does not either); the
	// command is killed after the grace period, and reaped.
	res := make(chan error, 1)
	go func() { res <- d.Close() }()
	require.NoError(t, await(t, 15*time.Second, "Dialer.Close with a ProxyCommand ignoring SIGHUP", res))
	s.requireReaped(t, 15*time.Second)
	s.requireNoSecret(t, nil)
}

// TestProxyCommandHangingIsStoppedAfterContext: a command that ignores
// SIGHUP and never speaks is ended by Connect's context: Connect returns
// the context's error in bounded time, and the command is killed and
// reaped.
func TestProxyCommandHangingIsStoppedAfterContext(t *testing.T) {
	s := newPCSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := s.connect(ctx, s.wrap(`trap "" HUP`, "sleep 600"))
		res <- err
	}()
	err := await(t, 15*time.Second, "Connect through a hanging ProxyCommand", res)
	t.Logf("Connect returned after %v: %v", time.Since(start), err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	s.requireReaped(t, 5*time.Second)
	s.requireNoSecret(t, err)
}

// TestProxyCommandMisbehaving: commands that close their output and
// keep running (with and without SIGHUP ignored), that write garbage
// forever, that exit at once, and that do not exist: Connect fails in
// bounded time, long before its context ends; a failing command's exit
// status is in the error; the command line never is; nothing is left
// running or unreaped.
func TestProxyCommandMisbehaving(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command func(s *pcSetup) string
		want    string // in the error, if not ""
	}{
		{"ClosesStdoutKeepsRunning", func(s *pcSetup) string { return s.wrap("exec >&-", "sleep 600") }, ""},
		{"ClosesStdoutIgnoresHUP", func(s *pcSetup) string { return s.wrap(`exec >&-; trap "" HUP`, "sleep 600") }, ""},
		{"Garbage", func(s *pcSetup) string { return s.wrap("", "yes "+advSecret) }, ""},
		{"ExitsAtOnce", func(s *pcSetup) string { return s.wrap("", "true "+advSecret) }, ""},
		{"Fails", func(s *pcSetup) string { return s.wrap("", "sh -c \"exit 42\" "+advSecret) }, "exit status 42"},
		{"DoesNotExist", func(s *pcSetup) string { return s.wrap("", "/nonexistent/"+advSecret) }, "exit status 127"},
		{"KilledBySignal", func(s *pcSetup) string { return s.wrap("", `sh -c "kill -9 \$\$" `+advSecret) }, "killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPCSetup(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res := make(chan error, 1)
			go func() {
				d, err := s.connect(ctx, tc.command(s))
				if err == nil {
					d.Close()
				}
				res <- err
			}()
			err := await(t, 15*time.Second, "Connect through a misbehaving ProxyCommand", res)
			t.Logf("%v", err)
			require.ErrorContains(t, err, "ProxyCommand for viacmd", "the error does not say the ProxyCommand was in the way")
			require.NotErrorIs(t, err, context.DeadlineExceeded)
			if tc.want != "" {
				require.Contains(t, err.Error(), tc.want)
			}
			s.requireNoSecret(t, err)
			s.requireReaped(t, 5*time.Second)
		})
	}
}

// TestProxyCommandBadTokens: a '%' at the end or an unknown token, from
// WithProxyCommand or the config file, is an error that says what is wrong
// without the command line, and nothing is run.
func TestProxyCommandBadTokens(t *testing.T) {
	s := newPCSetup(t)
	marker := filepath.Join(s.h.dir, "ran")
	for _, tc := range []struct {
		command, want string
	}{
		// Were the command (wrongly) run, the secret would be the inner
		// shell's $0, and only the marker would be made.
		{"sh -c 'touch " + marker + "' " + advSecret + " 100%", "'%' at the end"},
		{"sh -c 'touch " + marker + "' " + advSecret + " %x", "%x"},
		{"sh -c 'touch " + marker + "' %" + advSecret, "%s"},
	} {
		s.h.write(t, "config", fmt.Sprintf("Host viacmd\n  HostName 127.0.0.1\n  Port %s\n  User %s\n", portOf(s.srv.Addr), s.srv.User))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.connect(ctx, tc.command)
		cancel()
		require.ErrorContains(t, err, tc.want, tc.command)
		s.requireNoSecret(t, err)

		s.h.write(t, "config", fmt.Sprintf("Host viacmd\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyCommand %s\n", portOf(s.srv.Addr), s.srv.User, tc.command))
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		_, err = sshdial.Connect(ctx, "viacmd")
		cancel()
		require.ErrorContains(t, err, tc.want, tc.command)
		// The config file's error holds the command line, secret and all:
		// see the report (sshconfig.go's "ProxyCommand %q").
	}
	require.NoFileExists(t, marker, "a ProxyCommand with a bad token was run")
}

// TestProxyCommandFloodsStderr: a command that writes megabytes to its
// standard error before relaying neither blocks nor breaks the connection:
// its standard error is passed through, all of it.
func TestProxyCommandFloodsStderr(t *testing.T) {
	const flood = 4 << 20
	s := newPCSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := s.connect(ctx, s.wrap(fmt.Sprintf("head -c %d /dev/zero >&2", flood), s.relay()))
	require.NoError(t, err)
	requireEchoThrough(t, d)
	require.NoError(t, d.Close())
	fi, err := os.Stat(s.stderr)
	require.NoError(t, err)
	require.GreaterOrEqual(t, fi.Size(), int64(flood), "the command's standard error was not passed through")
	s.requireReaped(t, 5*time.Second)
}

// TestProxyCommandReconnectAfterServerRestart: sshd is killed (listener
// and sessions) under a Dialer that reaches it through a ProxyCommand. The
// relay dies with the connection; a dial while sshd is down fails (the new
// relay cannot connect) without the command line in its error; once sshd
// is back, a dial reconnects through a new relay. Neither the errors nor
// any log line hold the command line, and after Close every relay was
// reaped.
func TestProxyCommandReconnectAfterServerRestart(t *testing.T) {
	s := newPCSetup(t)
	relayLog := filepath.Join(s.h.dir, "relay.log")
	t.Setenv("SSHDIAL_TEST_RELAY_LOG", relayLog)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := s.connect(ctx, s.wrap("", s.relay()))
	require.NoError(t, err)
	defer d.Close()
	target := serve(t, "tcp", echo).Addr().String()
	c, err := d.Dial("tcp", target)
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "ping"))

	res := backgroundRead(c)
	waitBlockedIn(t, "sshdial.(*Conn).Read")
	s.srv.Signal(syscall.SIGKILL, true)
	err = await(t, 10*time.Second, "Read after kill -9 of sshd", res)
	require.ErrorIs(t, err, sshdial.ErrSSHConnectionLost)
	s.requireNoSecret(t, err)
	c.Close()

	// sshd is down: the reconnect's relay fails to connect.
	down, cancelDown := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = d.DialContext(down, "tcp", target)
	cancelDown()
	require.ErrorContains(t, err, "the ProxyCommand for viacmd ended")
	t.Logf("dial while sshd is down: %v", err)
	s.requireNoSecret(t, err)

	require.NoError(t, s.srv.Restart())
	// The Dialer may wait before its next reconnect. The condition runs
	// on another goroutine, one call at a time: its errors are checked here.
	var dialErrs []error
	require.Eventually(t, func() bool {
		up, cancelUp := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelUp()
		var err error
		c, err = d.DialContext(up, "tcp", target)
		if err != nil {
			dialErrs = append(dialErrs, err)
		}
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "no dial after the restart")
	for _, err := range dialErrs {
		s.requireNoSecret(t, err)
	}
	require.NoError(t, testutil.RoundTrip(c, "pong"))
	c.Close()
	require.NoError(t, d.Close())

	got, err := os.ReadFile(relayLog)
	require.NoError(t, err)
	require.GreaterOrEqual(t, strings.Count(string(got), "\n"), 2, "the reconnect did not go through a new relay")
	s.requireReaped(t, 5*time.Second)
	s.requireNoSecret(t, nil)
	require.Contains(t, s.logs.String(), "connected", "nothing was logged: the log check proves nothing")
}

// A ProxyCommand in the config file with a bad token is an error that says
// what is wrong, without the command line, which may hold secrets.
func TestProxyCommandConfigErrorHoldsNoCommandLine(t *testing.T) {
	s := newPCSetup(t)
	s.h.write(t, "config", fmt.Sprintf("Host viacmd\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyCommand nc --token %s %%h %%p 100%%\n", portOf(s.srv.Addr), s.srv.User, advSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sshdial.Connect(ctx, "viacmd")
	assert.ErrorContains(t, err, "'%' at the end")
	assert.NotContains(t, err.Error(), advSecret, "the command line is in the error")
}

// WithProxyCommand replaces the config's ProxyCommand, which is then not
// read: a bad token in it does not fail Connect.
func TestWithProxyCommandReplacesBrokenConfigOne(t *testing.T) {
	s := newPCSetup(t)
	s.h.write(t, "config", fmt.Sprintf("Host viacmd\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyCommand nc %%x\n", portOf(s.srv.Addr), s.srv.User))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, "viacmd", sshdial.WithProxyCommand("none"))
	if assert.NoError(t, err) {
		d.Close()
	}
}

// A ProxyCommand that ignores SIGHUP does not hold Connect past its
// context: the kill after the grace period is not waited for.
func TestHangingProxyCommandDoesNotHoldConnectPastContext(t *testing.T) {
	s := newPCSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.connect(ctx, s.wrap(`trap "" HUP`, "sleep 600"))
	took := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, took, 1500*time.Millisecond, "Connect overran its 300ms context by %v", took-300*time.Millisecond)
	s.requireReaped(t, 5*time.Second)
}
