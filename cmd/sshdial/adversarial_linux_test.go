//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testproc"
	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/sys/unix"
)

// The command attacked from the outside, as a demanding user runs it: -f,
// remote dynamic forwarding (-R port), passphrase prompts on a terminal,
// -4/-6 and ProxyCommand.

// advTagged returns the pids of live (not zombie) processes whose
// environment holds all of words.
func advTagged(words ...string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		all := true
		for _, w := range words {
			if !bytes.Contains(env, []byte("\x00"+w+"\x00")) && !bytes.HasPrefix(env, []byte(w+"\x00")) {
				all = false
			}
		}
		if !all {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// advReap waits up to limit for pid (an orphan this process reaps, as
// PR_SET_CHILD_SUBREAPER makes it) to exit, and returns its exit status.
func advReap(pid int, limit time.Duration) (int, error) {
	var ws unix.WaitStatus
	var err error
	reaped := eventually(limit, 20*time.Millisecond, func() bool {
		var got int
		got, err = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		return err != nil || got == pid
	})
	switch {
	case err != nil:
		return -1, err
	case !reaped:
		return -1, fmt.Errorf("still running after %v", limit)
	case ws.Signaled():
		return -1, fmt.Errorf("killed by %v", ws.Signal())
	}
	return ws.ExitStatus(), nil
}

// advBackground runs the command with -f as a user's shell would, and
// makes sure that no background process it left outlives the test.
type advBackground struct {
	t   *testing.T
	tag string
}

func newAdvBackground(t *testing.T) *advBackground {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	b := &advBackground{t: t, tag: fmt.Sprintf("SSHDIAL_ADV_TAG=%d-%d", os.Getpid(), time.Now().UnixNano())}
	t.Cleanup(func() {
		for _, pid := range b.pids() {
			syscall.Kill(pid, syscall.SIGKILL)
			advReap(pid, 5*time.Second)
		}
		advReapOrphans()
	})
	return b
}

// advReapOrphans reaps the orphans this process adopted as a subreaper
// (sshd's session processes, whose sshd was stopped), waiting up to 5s for
// them to exit: else they would be left as zombies.
func advReapOrphans() {
	eventually(5*time.Second, 50*time.Millisecond, func() bool {
		running := 0
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			i := bytes.LastIndexByte(stat, ')')
			if err != nil || i < 0 {
				continue
			}
			f := strings.Fields(string(stat[i+1:]))
			comm := string(stat[bytes.IndexByte(stat, '(')+1 : i])
			if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) || !strings.HasPrefix(comm, "sshd") {
				continue
			}
			if f[0] == "Z" {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			} else {
				running++
			}
		}
		return running == 0
	})
}

// pids returns the background processes left running.
func (b *advBackground) pids() []int { return advTagged(b.tag, backgroundEnv+"=3") }

func (b *advBackground) env() []string {
	return append(os.Environ(), "SSHDIAL_TEST_MAIN=1", "SSHDIAL_TEST_WATCH_PID="+strconv.Itoa(os.Getpid()), b.tag)
}

// run runs the foreground with stdout and stderr in files, and returns
// its exit code and output.
func (b *advBackground) run(args ...string) (code int, stdout, stderr string) {
	t := b.t
	t.Helper()
	dir := t.TempDir()
	outFile, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = b.env()
	cmd.Stdout, cmd.Stderr = outFile, errFile
	code = b.wait(cmd, 40*time.Second)
	o, _ := os.ReadFile(outFile.Name())
	e, _ := os.ReadFile(errFile.Name())
	return code, string(o), string(e)
}

func (b *advBackground) wait(cmd *exec.Cmd, limit time.Duration) int {
	t := b.t
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the foreground of -f did not return within %v", limit)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// one returns the one background process, failing if there is not
// exactly one.
func (b *advBackground) one() int {
	b.t.Helper()
	pids := b.pids()
	if len(pids) != 1 {
		b.t.Fatalf("background processes: %v, want exactly one", pids)
	}
	return pids[0]
}

// none fails if a background process is left.
func (b *advBackground) none(what string) {
	b.t.Helper()
	if pids := b.pids(); len(pids) != 0 {
		b.t.Errorf("%s: background processes left running: %v", what, pids)
	}
}

// stop sends the background process SIGTERM and wants it to exit 0.
func (b *advBackground) stop(pid int) {
	b.t.Helper()
	syscall.Kill(pid, syscall.SIGTERM)
	code, err := advReap(pid, 20*time.Second)
	if err != nil || code != exitOK {
		b.t.Errorf("the background process after SIGTERM: exit %d, %v; want 0", code, err)
	}
}

func advFreePort(t *testing.T) string {
	p, err := testproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(p)
}

func advBusyPort(t *testing.T) (net.Listener, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return l, port
}

func advRoundTrip(t *testing.T, addr, text string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := testutil.RoundTrip(conn, text); err != nil {
		t.Fatal(err)
	}
}

// -f, attacked: failures at start are the foreground's exit code and leave
// nothing behind; what does go to the background works without a
// terminal, without stdout or stderr, and stops cleanly.
func TestAdvBackground(t *testing.T) {
	b := newAdvBackground(t)
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")

	t.Run("busy-port-exit-3", func(t *testing.T) {
		b := &advBackground{t: t, tag: b.tag}
		_, busy := advBusyPort(t)
		code, _, stderr := b.run(f.args("-f", "-L", busy+":"+echo.Addr().String())...)
		if code != exitForward || !strings.Contains(stderr, "address already in use") || !strings.Contains(stderr, "-L "+busy) {
			t.Errorf("exit %d, want %d with the forward's error:\n%s", code, exitForward, stderr)
		}
		if strings.Contains(stderr, "going to the background") {
			t.Errorf("said it went to the background after a failure:\n%s", stderr)
		}
		b.none("after a forward failed at start")
	})

	t.Run("exit-on-forward-failure-no", func(t *testing.T) {
		b := &advBackground{t: t, tag: b.tag}
		blocker, busy := advBusyPort(t)
		code, _, stderr := b.run(f.args("-f", "-o", "ExitOnForwardFailure=no", "-L", busy+":"+echo.Addr().String())...)
		if code != exitOK {
			t.Fatalf("exit %d, want 0 (the forward is retried in the background):\n%s", code, stderr)
		}
		pid := b.one()
		// The retry happens in the background process.
		blocker.Close()
		var err error
		if !eventually(20*time.Second, 200*time.Millisecond, func() bool {
			var conn net.Conn
			if conn, err = net.DialTimeout("tcp", "127.0.0.1:"+busy, 2*time.Second); err == nil {
				err = testutil.RoundTrip(conn, "retried in the background")
				conn.Close()
			}
			return err == nil
		}) {
			t.Fatalf("the background process did not take port %s 20s after it was freed: %v", busy, err)
		}
		b.stop(pid)
	})

	t.Run("quiet", func(t *testing.T) {
		b := &advBackground{t: t, tag: b.tag}
		port := advFreePort(t)
		code, stdout, stderr := b.run(f.args("-f", "-q", "-L", port+":"+echo.Addr().String())...)
		if code != exitOK || stderr != "" || stdout != "" {
			t.Fatalf("-f -q: exit %d, want 0 and no output; stdout %q, stderr:\n%s", code, stdout, stderr)
		}
		pid := b.one()
		advRoundTrip(t, "127.0.0.1:"+port, "quietly in the background")
		b.stop(pid)
	})

	t.Run("stdio-closed", func(t *testing.T) {
		// A cron job or a service manager may start it with stdin, stdout
		// and stderr closed.
		b := &advBackground{t: t, tag: b.tag}
		port := advFreePort(t)
		args := f.args("-f", "-L", port+":"+echo.Addr().String())
		cmd := exec.Command("/bin/sh", append([]string{"-c", `exec "$0" "$@" <&- >&- 2>&-`, os.Args[0]}, args...)...)
		cmd.Env = b.env()
		if code := b.wait(cmd, 40*time.Second); code != exitOK {
			t.Fatalf("-f with stdin, stdout and stderr closed: exit %d, want 0", code)
		}
		pid := b.one()
		advRoundTrip(t, "127.0.0.1:"+port, "without stdio")
		b.stop(pid)

		_, busy := advBusyPort(t)
		args = f.args("-f", "-L", busy+":"+echo.Addr().String())
		cmd = exec.Command("/bin/sh", append([]string{"-c", `exec "$0" "$@" <&- >&- 2>&-`, os.Args[0]}, args...)...)
		cmd.Env = b.env()
		if code := b.wait(cmd, 40*time.Second); code != exitForward {
			t.Errorf("-f with stdio closed and a busy port: exit %d, want %d", code, exitForward)
		}
		b.none("a failure with stdio closed")
	})

	t.Run("help-version-demo", func(t *testing.T) {
		b := &advBackground{t: t, tag: b.tag}
		for _, tt := range []struct {
			args []string
			code int
			out  string
		}{
			{[]string{"-f", "-h"}, exitOK, "usage: sshdial"},
			{[]string{"-h", "-f"}, exitOK, "usage: sshdial"},
			{[]string{"-fV"}, exitOK, "sshdial "},
			{[]string{"demo", "-f"}, exitUsage, ""},
			{[]string{"-f"}, exitUsage, ""},
			{[]string{"-f", "-N", "host"}, exitUsage, ""}, // nothing to forward
		} {
			code, stdout, stderr := b.run(tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.out) {
				t.Errorf("%q: exit %d, want %d with %q; stdout %q stderr %q", tt.args, code, tt.code, tt.out, stdout, stderr)
			}
			b.none(fmt.Sprint(tt.args))
		}
	})

	t.Run("background-grace", func(t *testing.T) {
		// SIGTERM to the background process lets an open tunnel finish
		// within --grace, then it exits 0.
		b := &advBackground{t: t, tag: b.tag}
		port := advFreePort(t)
		code, _, stderr := b.run(f.args("-f", "--grace", "20s", "-L", port+":"+echo.Addr().String())...)
		if code != exitOK {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		pid := b.one()
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := testutil.RoundTrip(conn, "before"); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond) // on purpose: the tunnel must outlast the signal by a while
		if err := testutil.RoundTrip(conn, "during the grace period"); err != nil {
			t.Fatalf("the open tunnel broke at SIGTERM in the background: %v", err)
		}
		if _, err := advReap(pid, 300*time.Millisecond); err == nil {
			t.Fatal("the background process exited with a tunnel open, within the grace period")
		}
		conn.Close()
		if code, err := advReap(pid, 15*time.Second); err != nil || code != exitOK {
			t.Fatalf("the background process after its last tunnel closed: exit %d, %v", code, err)
		}
	})
}

// advSOCKS5 asks the SOCKS5 server at addr to connect to host:port and
// returns the reply code and, on success, the tunnel.
func advSOCKS5(addr, host string, port int) (byte, net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, nil, err
	}
	c.SetDeadline(time.Now().Add(40 * time.Second))
	fail := func(err error) (byte, net.Conn, error) { c.Close(); return 0, nil, err }
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 || b[1] != 0 {
		return fail(fmt.Errorf("greeting answered % x, %v", b[:2], err))
	}
	req := []byte{5, 1, 0}
	if ip := net.ParseIP(host).To4(); ip != nil {
		req = append(append(req, 1), ip...)
	} else {
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(c, b[:4]); err != nil || b[0] != 5 {
		return fail(fmt.Errorf("reply % x, %v", b, err))
	}
	var rest int
	switch b[3] {
	case 1:
		rest = 4 + 2
	case 4:
		rest = 16 + 2
	default:
		return fail(fmt.Errorf("reply address type %d", b[3]))
	}
	if _, err := io.ReadFull(c, make([]byte, rest)); err != nil {
		return fail(err)
	}
	if b[1] != 0 {
		c.Close()
		return b[1], nil, nil
	}
	c.SetDeadline(time.Time{})
	return 0, c, nil
}

// advSOCKS4 asks the SOCKS4 server at addr to connect to ip:port and
// returns the reply code (90 granted, 91 rejected).
func advSOCKS4(addr, ip string, port int) (byte, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(40 * time.Second))
	req := binary.BigEndian.AppendUint16([]byte{4, 1}, uint16(port))
	req = append(append(req, net.ParseIP(ip).To4()...), "adv\x00"...)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return b[1], nil
}

// statusLine returns the status summary's line for the forward text.
func advStatusLine(t *testing.T, c *cli, prefix string) string {
	t.Helper()
	var b strings.Builder
	c.s.writeStatus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			return line
		}
	}
	t.Fatalf("no status line %q in:\n%s", prefix, b.String())
	return ""
}

func advCounter(t *testing.T, line, name string) int {
	t.Helper()
	m := regexp.MustCompile(`\b` + name + ` (\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %q in %q", name, line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Remote dynamic forwarding (-R port), attacked through the server's port:
// failed targets get the right SOCKS replies and are counted; many
// tunnels at once; the status summary counts them and their bytes.
func TestAdvRemoteDynamic(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	_, echoPortText, _ := net.SplitHostPort(echo.Addr().String())
	echoPort, _ := strconv.Atoi(echoPortText)
	closed, _ := strconv.Atoi(advFreePort(t))
	c := startCLI(t, f.args("-R", "0")...)
	addr := c.addr("-R", 0)
	if !strings.HasPrefix(addr, "localhost:") {
		t.Fatalf("-R 0 listens on the server's %q, want its loopback", addr)
	}

	t.Run("refused", func(t *testing.T) {
		code, _, err := advSOCKS5(addr, "127.0.0.1", closed)
		if err != nil || code != 0x05 {
			t.Errorf("SOCKS5 to a closed port: reply %#x, %v; want 0x05 (connection refused)", code, err)
		}
		code, err = advSOCKS4(addr, "127.0.0.1", closed)
		if err != nil || code != 91 {
			t.Errorf("SOCKS4 to a closed port: reply %d, %v; want 91", code, err)
		}
	})
	t.Run("unknown-name", func(t *testing.T) {
		code, _, err := advSOCKS5(addr, "no-such-host.invalid", 80)
		if err != nil || code != 0x04 {
			t.Errorf("SOCKS5 to a name that does not resolve: reply %#x, %v; want 0x04 (host unreachable)", code, err)
		}
	})
	t.Run("counted", func(t *testing.T) {
		line := advStatusLine(t, c, "-R 0:")
		if n := advCounter(t, line, "failed"); n < 3 {
			t.Errorf("status counts %d failed tunnels, want 3 or more: %s", n, line)
		}
		if !strings.Contains(line, "SOCKS, dialed from here") || !strings.Contains(line, "the server's "+addr) {
			t.Errorf("status line: %s", line)
		}
	})
	t.Run("parallel", func(t *testing.T) {
		before := advCounter(t, advStatusLine(t, c, "-R 0:"), "total")
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		conns := make(chan net.Conn, n)
		for i := range n {
			wg.Go(func() {
				code, conn, err := advSOCKS5(addr, "127.0.0.1", echoPort)
				if err != nil || code != 0 {
					errs <- fmt.Errorf("tunnel %d: reply %#x, %v", i, code, err)
					return
				}
				conns <- conn
				conn.SetDeadline(time.Now().Add(40 * time.Second))
				if err := testutil.RoundTrip(conn, fmt.Sprintf("parallel %d", i)); err != nil {
					errs <- fmt.Errorf("tunnel %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		close(conns)
		for err := range errs {
			t.Error(err)
		}
		// All open at once: the status says so.
		line := advStatusLine(t, c, "-R 0:")
		if open := advCounter(t, line, "open"); open != n {
			t.Errorf("status: open %d with %d tunnels open: %s", open, n, line)
		}
		for conn := range conns {
			conn.Close()
		}
		line = advStatusLine(t, c, "-R 0:")
		if total := advCounter(t, line, "total"); total != before+n {
			t.Errorf("status: total %d, want %d: %s", total, before+n, line)
		}
		if advCounter(t, line, "sent") == 0 || advCounter(t, line, "received") == 0 {
			t.Errorf("status does not count the bytes both ways: %s", line)
		}
		if !eventually(10*time.Second, 50*time.Millisecond, func() bool { return advCounter(t, advStatusLine(t, c, "-R 0:"), "open") == 0 }) {
			t.Fatalf("tunnels still open 10s after their clients closed: %s", advStatusLine(t, c, "-R 0:"))
		}
	})
}

// -R specs OpenSSH would not take either are usage errors; the ones it
// takes mean what they mean to it.
func TestAdvRemoteDynamicSpecs(t *testing.T) {
	for _, bad := range []string{"0:", ":", "99999", "65536", "host:", "-1", "0x50", "80 ", "HTTP", "nosuchservice", "/tmp/x.sock",
		"[::1]", "[::1]:", "[::1]:0:", "localhost:80:", "8080:host", ":0:", "\x00"} {
		if o, err := parseArgs([]string{"-R", bad, "h"}); err == nil {
			t.Errorf("-R %q: accepted as %+v", bad, o.remote)
		} else if !strings.Contains(err.Error(), "-R") {
			t.Errorf("-R %q: the error does not name the flag: %v", bad, err)
		}
	}
	for _, tt := range []struct {
		spec   string
		listen endpoint
	}{
		{"0", endpoint{port: 0}},
		{"1080", endpoint{port: 1080}},
		{":1080", endpoint{host: "*", port: 1080}},
		{"*:1080", endpoint{host: "*", port: 1080}},
		{"[::1]:1080", endpoint{host: "::1", port: 1080}},
		{"127.0.0.1:0", endpoint{host: "127.0.0.1", port: 0}},
		// As a2port reads them (ssh -G: remoteforward 80 [socks]:0).
		{"+80", endpoint{port: 80}},
		{" 80", endpoint{port: 80}},
		{"http", endpoint{port: 80}},
	} {
		o, err := parseArgs([]string{"-R", tt.spec, "h"})
		if err != nil {
			t.Errorf("-R %q: %v", tt.spec, err)
			continue
		}
		if r := o.remote[0]; !r.dynamic || r.listen != tt.listen {
			t.Errorf("-R %q: %+v, want dynamic on %+v", tt.spec, r, tt.listen)
		}
	}
}

// Passphrase prompts on a terminal, attacked: a wrong one then the right
// one, an empty answer, three wrong ones, BatchMode=yes, and ^C at the
// prompt, which must give the terminal its echo back.
func TestAdvPassphrase(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	key := f.encryptedClientKey(t, "open sesame")
	line := func(extra ...string) string {
		return shellQuote(append([]string{os.Args[0], "-N", "-v", "-L", "0:" + echo.Addr().String(), "-i", key,
			"-o", "UserKnownHostsFile=" + f.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20",
			"-p", f.port}, append(extra, f.srv.User+"@127.0.0.1")...)...)
	}
	prompt := "Enter passphrase for key '" + key + "': "
	again := "Bad passphrase, try again for '" + key + "': "

	t.Run("wrong-then-right", func(t *testing.T) {
		term := onTerminal(t, nil, "exec "+line())
		waitFor(t, term.out, prompt, 30*time.Second)
		io.WriteString(term.in, "staple\r")
		waitFor(t, term.out, again, 30*time.Second)
		io.WriteString(term.in, "open sesame\r")
		advRoundTrip(t, waitFor(t, term.out, "listen=", 30*time.Second), "after a wrong passphrase")
		if out := term.out.String(); strings.Contains(out, "staple") || strings.Contains(out, "sesame") {
			t.Fatalf("a passphrase was echoed:\n%s", out)
		}
	})
	t.Run("empty", func(t *testing.T) {
		term := onTerminal(t, nil, "exec "+line())
		waitFor(t, term.out, prompt, 30*time.Second)
		io.WriteString(term.in, "\r")
		if code := term.exit(t, 40*time.Second); code != exitConnection {
			t.Errorf("an empty passphrase: exit %d, want %d", code, exitConnection)
		}
		out := term.out.String()
		if n := strings.Count(out, "Enter passphrase"); n != 1 || !strings.Contains(out, "no passphrase given") {
			t.Errorf("an empty passphrase: want one prompt and the key given up:\n%s", out)
		}
	})
	t.Run("three-wrong", func(t *testing.T) {
		term := onTerminal(t, nil, "exec "+line())
		waitFor(t, term.out, prompt, 30*time.Second)
		for i := 1; i <= 3; i++ {
			if i > 1 && !eventually(30*time.Second, 20*time.Millisecond, func() bool { return strings.Count(term.out.String(), again) >= i-1 }) {
				t.Fatalf("no prompt %d:\n%s", i, term.out)
			}
			io.WriteString(term.in, fmt.Sprintf("wrong%d\r", i))
		}
		if code := term.exit(t, 40*time.Second); code != exitConnection {
			t.Errorf("three wrong passphrases: exit %d, want %d", code, exitConnection)
		}
		out := term.out.String()
		if strings.Count(out, again) != 2 || !strings.Contains(out, "3 wrong passphrases") || strings.Contains(out, "wrong1") {
			t.Errorf("three wrong passphrases: want two more prompts, no echo and the count said:\n%s", out)
		}
	})
	t.Run("batchmode", func(t *testing.T) {
		term := onTerminal(t, nil, "exec "+line("-o", "BatchMode=yes"))
		if code := term.exit(t, 40*time.Second); code != exitConnection {
			t.Errorf("BatchMode=yes with only an encrypted key: exit %d, want %d", code, exitConnection)
		}
		if strings.Contains(term.out.String(), "Enter passphrase") || !strings.Contains(term.out.String(), "authentication failed") {
			t.Errorf("BatchMode=yes prompted:\n%s", term.out)
		}
	})
	t.Run("ctrl-c", func(t *testing.T) {
		// The shell under script goes on after the command (trap) and
		// shows the terminal's settings.
		term := onTerminal(t, nil, "trap : INT; "+line()+"; echo EXIT=$?; stty -a; echo END")
		waitFor(t, term.out, prompt, 30*time.Second) // echo is off before the prompt shows (prompter.read)
		io.WriteString(term.in, "\x03")
		code := waitFor(t, term.out, "EXIT=", 15*time.Second)
		waitFor(t, term.out, "END", 15*time.Second)
		out := term.out.String()
		settings := strings.FieldsFunc(out[strings.Index(out, "EXIT="):], func(r rune) bool { return r == ' ' || r == ';' || r == '\n' || r == '\r' })
		echoOn := false
		for _, w := range settings {
			if w == "echo" {
				echoOn = true
			}
		}
		if !echoOn {
			t.Errorf("^C at the passphrase prompt left the terminal without echo (exit %s):\n%s", code, out)
		}
		if strings.Contains(out, "listen=") {
			t.Errorf("set up forwards after ^C at the prompt:\n%s", out)
		}
	})
}

// -4, -6 and -o ProxyCommand, attacked: -6 through a ProxyCommand binds
// ::1, refuses an IPv4 bind address; -J with a ProxyCommand is a usage
// error; a failing ProxyCommand gives its exit status; the command line,
// which may hold a secret, is never in the output, even with -vv.
func TestAdvFamilyAndProxyCommand(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	const secret = "hunter2secretword"
	relay := "ProxyCommand=" + os.Args[0] + " " + testutil.RelayCommand + " %h %p " + secret

	t.Run("-6-through-ProxyCommand", func(t *testing.T) {
		c := startCLI(t, append([]string{"-6"}, f.args("-D", "0", "-L", "0:"+echo.Addr().String(), "-o", relay)...)...)
		for _, kind := range []string{"-D", "-L"} {
			if a := c.addr(kind, 0); !strings.HasPrefix(a, "[::1]:") {
				t.Errorf("-6 %s 0 listens on %s, want [::1]", kind, a)
			}
		}
		advRoundTrip(t, c.addr("-L", 0), "over IPv6 loopback, through a ProxyCommand")
	})
	t.Run("-6-with-IPv4-bind", func(t *testing.T) {
		code, _, stderr := runSync(t, 30*time.Second, append([]string{"-6"}, f.args("-L", "127.0.0.1:0:"+echo.Addr().String(), "-o", relay)...)...)
		if code != exitForward || !strings.Contains(stderr, "-L 127.0.0.1:0:") {
			t.Errorf("-6 -L 127.0.0.1:0:...: exit %d, want %d naming the forward:\n%s", code, exitForward, stderr)
		}
		code, _, stderr = runSync(t, 30*time.Second, append([]string{"-4"}, f.args("-D", "[::1]:0")...)...)
		if code != exitForward || !strings.Contains(stderr, "-D ") {
			t.Errorf("-4 -D [::1]:0: exit %d, want %d:\n%s", code, exitForward, stderr)
		}
	})
	t.Run("-4-6-last-wins", func(t *testing.T) {
		for args, want := range map[string]string{"-4 -6": "inet6", "-6 -4": "inet", "-46": "inet6", "-64": "inet"} {
			o, err := parseArgs(append(strings.Fields(args), "-D0", "h"))
			if err != nil || o.family != want {
				t.Errorf("%s: family %q, %v; want %q as ssh (the last wins)", args, o.family, err, want)
			}
		}
	})
	t.Run("-J-and-ProxyCommand", func(t *testing.T) {
		for _, args := range [][]string{
			{"-J", "jump", "-o", relay},
			{"-o", relay, "-J", "jump"},
			{"-o", "ProxyJump=jump", "-o", relay},
			{"-o", "ProxyCommand " + relay[len("ProxyCommand="):], "-oProxyJump=a,b"},
		} {
			code, stdout, stderr := runSync(t, 10*time.Second, append(args, "-D0", "h")...)
			if code != exitUsage || !strings.Contains(stderr, "give one") || strings.Contains(stdout+stderr, secret) {
				t.Errorf("%q: exit %d, want %d, without the command:\n%s%s", args, code, exitUsage, stdout, stderr)
			}
		}
		// ProxyCommand=none beside -J is no conflict.
		if _, err := parseArgs([]string{"-J", "jump", "-o", "ProxyCommand=none", "-D0", "h"}); err != nil {
			t.Errorf("-J with ProxyCommand=none: %v", err)
		}
	})
	t.Run("none-overrides-config", func(t *testing.T) {
		config := filepath.Join(t.TempDir(), "config")
		os.WriteFile(config, []byte("Host *\n  ProxyCommand false "+secret+"\n"), 0o600)
		c := startCLI(t, append([]string{"-F", config, "-o", "ProxyCommand=none"}, f.args("-L", "0:"+echo.Addr().String())...)...)
		advRoundTrip(t, c.addr("-L", 0), "ProxyCommand=none over the config's")
		if strings.Contains(c.stderr.String(), secret) {
			t.Errorf("the config's ProxyCommand is in the output:\n%s", c.stderr)
		}
	})
	t.Run("failing", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], append([]string{"-vv"}, f.args("-D", "0", "-o", "ProxyCommand=sh -c 'exit 7' "+secret)...)...)
		cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1")
		out := &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("a ProxyCommand that exits 7: still running after 30s:\n%s", out)
		}
		if code := cmd.ProcessState.ExitCode(); code != exitConnection || !strings.Contains(out.String(), "exit status 7") || strings.Contains(out.String(), secret) {
			t.Errorf("a ProxyCommand that exits 7: exit %d, want %d with its status and without its command line:\n%s", code, exitConnection, out)
		}
	})
	t.Run("secret-with-vv", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "relay.log")
		cmd := exec.Command(os.Args[0], append([]string{"-vv", "-D", "0"}, f.args("-L", "0:"+echo.Addr().String(), "-o", relay)...)...)
		cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1", "SSHDIAL_TEST_RELAY_LOG="+log)
		out := &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		defer func() {
			cmd.Process.Kill()
			<-done
		}()
		addr := waitFor(t, out, "listen=", 30*time.Second)
		advRoundTrip(t, addr, "with a secret in the ProxyCommand")
		if code, _, err := advSOCKS5(regexp.MustCompile(`-D 0" listen=(\S+)`).FindStringSubmatch(out.String())[1], "127.0.0.1", 1); err != nil || code == 0 {
			t.Errorf("SOCKS5 to port 1: %#x, %v", code, err)
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		waitFor(t, out, "sshdial status", 10*time.Second)
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			done <- nil
		case <-time.After(20 * time.Second):
			t.Fatal("still running 20s after SIGTERM")
		}
		if strings.Contains(out.String(), secret) {
			t.Errorf("the ProxyCommand's secret is in the output:\n%s", out)
		}
		if b, _ := os.ReadFile(log); !strings.Contains(string(b), secret) {
			t.Errorf("the relay did not get the secret word: %q", b)
		}
	})
}

// The background process of -f lets go of the foreground's stdout and
// stderr, so that `out=$(sshdial -f ...)`, or any caller that reads the
// output to its end, does not wait as long as the tunnels run: as ssh -f,
// it points stdin and stdout (and stderr, unless -v) at /dev/null once it
// is in the background.
func TestAdvBackgroundLetsGoOfOutput(t *testing.T) {
	b := newAdvBackground(t)
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	for _, which := range []string{"stdout", "stderr"} {
		t.Run(which, func(t *testing.T) {
			b := &advBackground{t: t, tag: b.tag}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd := exec.Command(os.Args[0], f.args("-f", "-q", "-L", "0:"+echo.Addr().String())...)
			cmd.Env = b.env()
			if which == "stdout" {
				cmd.Stdout = w
			} else {
				cmd.Stderr = w
			}
			code := b.wait(cmd, 40*time.Second)
			w.Close()
			if code != exitOK {
				t.Fatalf("exit %d", code)
			}
			pid := b.one()
			defer b.stop(pid)
			r.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadAll(r)
			if err != nil {
				t.Fatalf("the foreground exited, but its %s is still open 5s later (held by the background process): %v", which, err)
			}
		})
	}
}

// SIGTERM (or SIGINT sent to its pid alone) to the foreground of -f while
// the forwards are being set up ends the whole command, as with ssh -f:
// `timeout 5 sshdial -f ...` must leave no tunnels running.
func TestAdvBackgroundForegroundSignal(t *testing.T) {
	b := newAdvBackground(t)
	// A server that accepts and never says a word: connecting takes until
	// ConnectTimeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			b := &advBackground{t: t, tag: b.tag}
			cmd := exec.Command(os.Args[0], "-f", "-D", "0", "-o", "ConnectTimeout=30", "-o", "UserKnownHostsFile=/dev/null", "-p", port, "u@127.0.0.1")
			cmd.Env = b.env()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select { // the forwards are being set up: the command is connecting
			case <-accepted:
			case <-time.After(20 * time.Second):
				t.Fatal("the command did not connect within 20s")
			}
			cmd.Process.Signal(sig)
			select {
			case err := <-done:
				t.Logf("exit: %v", err)
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("the foreground of -f still waits 10s after %v", sig)
			}
			time.Sleep(500 * time.Millisecond) // on purpose: no background process may appear in this while
			b.none("after " + sig.String() + " to the foreground")
		})
	}
}

// --grace holds for -D and -R port tunnels as for -L's: their listeners
// are closed by proxysrv's Shutdown, not before it (which proxysrv takes as
// a hard stop of their tunnels).
func TestAdvGraceForProxies(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	_, echoPortText, _ := net.SplitHostPort(echo.Addr().String())
	echoPort, _ := strconv.Atoi(echoPortText)
	for _, kind := range []string{"-D", "-R"} {
		t.Run(kind, func(t *testing.T) {
			c := startCLI(t, f.args("--grace", "20s", kind, "0")...)
			code, conn, err := advSOCKS5(c.addr(kind, 0), "127.0.0.1", echoPort)
			if err != nil || code != 0 {
				t.Fatalf("SOCKS5: %#x, %v", code, err)
			}
			defer conn.Close()
			if err := testutil.RoundTrip(conn, "before"); err != nil {
				t.Fatal(err)
			}
			c.cancel()
			time.Sleep(500 * time.Millisecond) // on purpose: the tunnel must outlast the shutdown by a while
			if err := testutil.RoundTrip(conn, "during the grace period"); err != nil {
				t.Fatalf("the open %s tunnel broke at shutdown, within --grace 20s: %v", kind, err)
			}
			conn.Close()
		})
	}
}
