package main

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testproc"
	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// fixture is a real OpenSSH sshd with a client key file and a known_hosts
// file made by ssh-keyscan, in a temporary HOME without ssh-agent.
type fixture struct {
	srv        *opensshd.Server
	port       string
	key        string
	knownHosts string
}

func newFixture(t *testing.T, sshdConfig ...string) *fixture {
	t.Helper()
	srv := opensshd.Start(t, sshdConfig...)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	f := &fixture{srv: srv, key: filepath.Join(home, "id_test"), knownHosts: filepath.Join(home, "known_hosts_test")}
	_, f.port, _ = net.SplitHostPort(srv.Addr)
	block, err := ssh.MarshalPrivateKey(srv.ClientPrivateKey, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keyscan", "-p", f.port, "-t", "ed25519", "127.0.0.1").Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("ssh-keyscan: %v %s", err, out)
	}
	if err := os.WriteFile(f.knownHosts, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// encryptedClientKey writes the server's client key encrypted with
// passphrase, and returns its path.
func (f *fixture) encryptedClientKey(t *testing.T, passphrase string) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKeyWithPassphrase(f.srv.ClientPrivateKey, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_encrypted")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// args is the command line bench/ uses, with forwards before it.
func (f *fixture) args(forwards ...string) []string {
	return append(append([]string{"-N"}, forwards...),
		"-i", f.key, "-o", "UserKnownHostsFile="+f.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "ConnectTimeout=10", "-p", f.port, f.srv.User+"@127.0.0.1")
}

// cli is sshdial running in-process.
type cli struct {
	s      *session
	cancel context.CancelFunc
	done   chan int
	stderr *testutil.SyncBuffer
}

// startCLI starts the command in-process and waits until its forwards
// are up; when the test ends it is stopped, and must exit 0.
func startCLI(t *testing.T, args ...string) *cli {
	t.Helper()
	return launchCLI(t, true, args...)
}

// launchCLI starts the command in-process and waits until its forwards are
// up; when the test ends it is stopped, and with wantOK must exit 0.
func launchCLI(t *testing.T, wantOK bool, args ...string) *cli {
	t.Helper()
	return launchCLIHurry(t, wantOK, nil, args...)
}

// launchCLIHurry is launchCLI with hurry as the command's second signal.
func launchCLIHurry(t *testing.T, wantOK bool, hurry <-chan struct{}, args ...string) *cli {
	t.Helper()
	ready := make(chan *session, 1)
	testReady = func(s *session) { ready <- s }
	defer func() { testReady = nil }()
	ctx, cancel := context.WithCancel(context.Background())
	c := &cli{cancel: cancel, done: make(chan int, 1), stderr: &testutil.SyncBuffer{}}
	go func() { c.done <- runWith(ctx, hurry, args, io.Discard, c.stderr) }()
	select {
	case c.s = <-ready:
	case code := <-c.done:
		cancel()
		t.Fatalf("sshdial %q exited %d:\n%s", args, code, c.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("sshdial %q not ready after 30s:\n%s", args, c.stderr)
	}
	t.Cleanup(func() {
		if code := c.stop(t); wantOK && code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		if t.Failed() {
			t.Logf("sshdial stderr:\n%s", c.stderr)
		}
	})
	return c
}

// stop shuts it down as SIGINT does and returns the exit code.
func (c *cli) stop(t *testing.T) int {
	c.cancel()
	select {
	case code := <-c.done:
		c.done <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("sshdial did not stop within 20s:\n%s", c.stderr)
		return -1
	}
}

// addr returns where the n-th forward of kind listens.
func (c *cli) addr(kind string, n int) string {
	for _, f := range c.s.forwards {
		if f.kind == kind {
			if n == 0 {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.addr
			}
			n--
		}
	}
	return ""
}

func origin(t *testing.T) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin:%s", r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

func httpGet(url string) (string, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 15 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// curl runs curl without any proxy from the environment.
func curl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--fail", "--max-time", "15"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func needCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv(opensshd.RequireEnv) != "" {
			t.Fatal("curl is not installed (apt-get install curl)")
		}
		t.Skip("curl is not installed")
	}
}

// Every kind of forward, through a real sshd, with the clients people use.
func TestOpenSSHForwards(t *testing.T) {
	needCurl(t)
	f := newFixture(t)
	o := origin(t)
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls:%s", r.URL.Path)
	}))
	defer tlsOrigin.Close()
	echoUnix := testutil.EchoServer(t, "unix")
	_, originPort, _ := net.SplitHostPort(o.Listener.Addr().String())

	c := startCLI(t, f.args(
		"-L", "0:"+o.Listener.Addr().String(),
		"-L", "0:"+echoUnix.Addr().String(),
		"-D", "0",
		"--http-proxy", "0",
		"-R", "0:"+o.Listener.Addr().String(),
		"-R", "0", // remote dynamic: a SOCKS proxy on the server, dialing from here
	)...)

	t.Run("L", func(t *testing.T) {
		got, err := httpGet("http://" + c.addr("-L", 0) + "/L")
		if err != nil || got != "origin:/L" {
			t.Fatalf("GET through -L: %q, %v", got, err)
		}
	})
	t.Run("L-loopback-and-half-close", func(t *testing.T) {
		for _, kind := range []string{"-L", "-D", "--http-proxy"} {
			if a := c.addr(kind, 0); !strings.HasPrefix(a, "127.0.0.1:") {
				t.Errorf("%s listens on %s, want 127.0.0.1 by default", kind, a)
			}
		}
		// The echo server answers everything and closes after our EOF:
		// the EOF has to pass through sshd and come back.
		conn, err := net.Dial("tcp", c.addr("-L", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "half")
		conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(conn)
		if err != nil || string(got) != "half" {
			t.Fatalf("after CloseWrite: read %q, %v; want the echo and EOF", got, err)
		}
	})
	t.Run("L-unix", func(t *testing.T) {
		conn, err := net.Dial("tcp", c.addr("-L", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := testutil.RoundTrip(conn, "through a unix socket on the server"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("D-socks5-hostname", func(t *testing.T) {
		// localhost is resolved by sshd's side: curl sends the name.
		out, err := curl("--socks5-hostname", c.addr("-D", 0), "http://localhost:"+originPort+"/socks5")
		if err != nil || out != "origin:/socks5" {
			t.Fatalf("curl --socks5-hostname: %q, %v", out, err)
		}
	})
	t.Run("D-socks4a", func(t *testing.T) {
		out, err := curl("--socks4a", c.addr("-D", 0), "http://localhost:"+originPort+"/socks4a")
		if err != nil || out != "origin:/socks4a" {
			t.Fatalf("curl --socks4a: %q, %v", out, err)
		}
	})
	t.Run("D-unknown-name", func(t *testing.T) {
		out, err := curl("--socks5-hostname", c.addr("-D", 0), "http://no-such-host.invalid/")
		if err == nil {
			t.Fatalf("curl through -D to a name nobody knows succeeded: %q", out)
		}
	})
	t.Run("http-proxy", func(t *testing.T) {
		out, err := curl("-k", "-x", "http://"+c.addr("--http-proxy", 0), tlsOrigin.URL+"/connect")
		if err != nil || out != "tls:/connect" {
			t.Fatalf("curl -x (HTTPS through CONNECT): %q, %v", out, err)
		}
		out, err = curl("--proxytunnel", "-x", "http://"+c.addr("--http-proxy", 0), "http://localhost:"+originPort+"/tunnel")
		if err != nil || out != "origin:/tunnel" {
			t.Fatalf("curl -p -x: %q, %v", out, err)
		}
	})
	// The server listens on its loopback ("localhost"); this machine is
	// the server. Dialed where sshd holds the listener: its port may be
	// the same number as one of the command's own listeners in the other
	// family, which "localhost" would reach.
	serverSide := func(n int) string {
		_, p, _ := net.SplitHostPort(c.addr("-R", n))
		port, _ := strconv.Atoi(p)
		addr := sshdListenAddr(t, f.srv, port)
		if addr == "" {
			t.Fatalf("sshd holds no listener on the -R port %d", port)
		}
		return addr
	}
	t.Run("R-from-server-side", func(t *testing.T) {
		got, err := httpGet("http://" + serverSide(0) + "/R")
		if err != nil || got != "origin:/R" {
			t.Fatalf("GET on the server's -R port %s: %q, %v", serverSide(0), got, err)
		}
	})
	t.Run("R-dynamic-from-server-side", func(t *testing.T) {
		// The server's SOCKS port; the names are resolved here.
		out, err := curl("--socks5-hostname", serverSide(1), "http://localhost:"+originPort+"/R-dynamic")
		if err != nil || out != "origin:/R-dynamic" {
			t.Fatalf("curl --socks5-hostname through -R %s: %q, %v", serverSide(1), out, err)
		}
		out, err = curl("--socks4a", serverSide(1), "http://localhost:"+originPort+"/R-dynamic4a")
		if err != nil || out != "origin:/R-dynamic4a" {
			t.Fatalf("curl --socks4a through -R: %q, %v", out, err)
		}
	})
	t.Run("status", func(t *testing.T) {
		var b strings.Builder
		c.s.writeStatus(&b)
		st := b.String()
		for _, want := range []string{"ssh up", "-L 0:" + o.Listener.Addr().String() + ": listening", "total 1", "-R 0:"} {
			if !strings.Contains(st, want) {
				t.Errorf("status lacks %q:\n%s", want, st)
			}
		}
		// The -L forward's one request and response were counted both ways.
		if !regexp.MustCompile(`-L 0:` + regexp.QuoteMeta(o.Listener.Addr().String()) + `: .*bytes sent [1-9]\d*, received [1-9]\d*\n`).MatchString(st) {
			t.Errorf("status does not count the -L forward's bytes both ways:\n%s", st)
		}
	})
}

// startPostgres starts PostgreSQL with trust authentication, as
// integration/servers_test.go does, and returns its port.
func startPostgres(t *testing.T) string {
	t.Helper()
	find := func(pattern string) string {
		m, _ := filepath.Glob(pattern)
		if len(m) == 0 {
			if os.Getenv(opensshd.RequireEnv) != "" {
				t.Fatalf("%s not found: install postgresql", pattern)
			}
			t.Skipf("%s not found", pattern)
		}
		return m[len(m)-1]
	}
	initdb, postgres := find("/usr/lib/postgresql/*/bin/initdb"), find("/usr/lib/postgresql/*/bin/postgres")
	dir, err := os.MkdirTemp("", "sshdial-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var opts testproc.Options
	if os.Geteuid() == 0 {
		opts.User = "postgres"
		exec.Command("chown", "postgres:postgres", dir).Run()
	}
	data := filepath.Join(dir, "data")
	p, err := testproc.Launch(opts, initdb, "--no-sync", "--auth=trust", "--username=postgres", "-D", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, p.Output())
	}
	port, err := testproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	srv := testproc.Start(t, opts, postgres, "-D", data, "-c", "listen_addresses=127.0.0.1", "-c", fmt.Sprintf("port=%d", port),
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off")
	if err := srv.WaitListening(addr, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return addr
}

// psql through -L, as `ssh -N -L 5432:db:5432 bastion` users run it.
func TestOpenSSHPsql(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		if os.Getenv(opensshd.RequireEnv) != "" {
			t.Fatal("psql is not installed (apt-get install postgresql-client)")
		}
		t.Skip("psql not installed")
	}
	pg := startPostgres(t)
	f := newFixture(t)
	c := startCLI(t, f.args("-L", "0:"+pg)...)
	_, port, _ := net.SplitHostPort(c.addr("-L", 0))
	cmd := exec.Command("psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-At", "-c", "select 'through ' || 'sshdial'")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "through sshdial" {
		t.Fatalf("psql through -L: %q, %v", out, err)
	}
}

// -o ProxyCommand: the SSH connection goes through the command, with %h
// and %p expanded (the command is this test binary as a relay).
func TestOpenSSHProxyCommand(t *testing.T) {
	f := newFixture(t)
	o := origin(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "relay.log")
	t.Setenv("SSHDIAL_TEST_RELAY_LOG", log)
	c := startCLI(t, f.args("-L", "0:"+o.Listener.Addr().String(),
		"-o", "ProxyCommand="+self+" "+testutil.RelayCommand+" %h %p")...)
	got, err := httpGet("http://" + c.addr("-L", 0) + "/via-proxycommand")
	if err != nil || got != "origin:/via-proxycommand" {
		t.Fatalf("GET through -L: %q, %v", got, err)
	}
	b, err := os.ReadFile(log)
	if want := "127.0.0.1 " + f.port + "\n"; err != nil || string(b) != want {
		t.Fatalf("relay log %q, %v; want %q: the SSH connection did not go through the ProxyCommand", b, err, want)
	}
}

// sshd killed with SIGKILL and started again: the same command's forwards
// work again.
func TestOpenSSHRestart(t *testing.T) {
	needCurl(t)
	f := newFixture(t)
	o := origin(t)
	_, originPort, _ := net.SplitHostPort(o.Listener.Addr().String())
	c := startCLI(t, f.args("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
		"-L", "0:"+o.Listener.Addr().String(), "-D", "0", "-R", "0:"+o.Listener.Addr().String(), "-R", "0")...)
	lAddr, dAddr, rAddr, rdAddr := c.addr("-L", 0), c.addr("-D", 0), c.addr("-R", 0), c.addr("-R", 1)
	if got, err := httpGet("http://" + lAddr + "/before"); err != nil || got != "origin:/before" {
		t.Fatalf("before: %q %v", got, err)
	}

	f.srv.Signal(syscall.SIGKILL, true) // sshd and its sessions
	// While sshd is down, -L still listens: a request made then waits for
	// the SSH connection instead of being refused, and is answered once
	// sshd is back.
	during := make(chan error, 1)
	go func() {
		got, err := httpGet("http://" + lAddr + "/during")
		if err == nil && got != "origin:/during" {
			err = fmt.Errorf("got %q", got)
		}
		during <- err
	}()
	// On purpose: sshd stays down for a while (past the keepalive check)
	// with the request waiting on -L, which is what is under test.
	time.Sleep(1500 * time.Millisecond)
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-during; err != nil {
		t.Fatalf("a request to -L made while sshd was down: %v", err)
	}

	if got, err := httpGet("http://" + lAddr + "/after"); err != nil || got != "origin:/after" {
		t.Fatalf("-L after sshd restarted: %q %v", got, err)
	}
	if out, err := curl("--socks5-hostname", dAddr, "http://localhost:"+originPort+"/after-D"); err != nil || out != "origin:/after-D" {
		t.Fatalf("-D after sshd restarted: %q %v", out, err)
	}
	// -R comes back on its own, on the same port.
	var got string
	var err error
	if !eventually(30*time.Second, 200*time.Millisecond, func() bool {
		got, err = httpGet("http://" + rAddr + "/after-R")
		return err == nil && got == "origin:/after-R"
	}) {
		t.Fatalf("-R on %s not back 30s after sshd restarted: %q %v", rAddr, got, err)
	}
	// So does the remote dynamic forward.
	if !eventually(30*time.Second, 200*time.Millisecond, func() bool {
		got, err = curl("--socks5-hostname", rdAddr, "http://localhost:"+originPort+"/after-R-dynamic")
		return err == nil && got == "origin:/after-R-dynamic"
	}) {
		t.Fatalf("-R dynamic on %s not back 30s after sshd restarted: %q %v", rdAddr, got, err)
	}
	if st := c.s.d.Stats(); st.Reconnects < 1 {
		t.Errorf("Stats().Reconnects = %d, want 1 or more", st.Reconnects)
	}
}

// Failures at start have their exit codes and say what to do.
func TestOpenSSHStartFailures(t *testing.T) {
	f := newFixture(t)
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	_, busyPort, _ := net.SplitHostPort(blocker.Addr().String())
	empty := filepath.Join(t.TempDir(), "empty_known_hosts")
	os.WriteFile(empty, nil, 0o600)
	otherKey := filepath.Join(t.TempDir(), "other")
	{
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	free, _ := testproc.FreePort()

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown host key", []string{"-D0", "-i", f.key, "-o", "UserKnownHostsFile=" + empty, "-p", f.port, f.srv.User + "@127.0.0.1"},
			exitConnection, []string{"host key is unknown", "SHA256:", "ssh-keyscan"}},
		{"IdentitiesOnly, another key", []string{"-D0", "-i", otherKey, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + f.knownHosts, "-p", f.port, f.srv.User + "@127.0.0.1"},
			exitConnection, []string{"authentication failed"}},
		{"unknown -o key", []string{"-D0", "-o", "NoSuchKey=yes", "-p", f.port, f.srv.User + "@127.0.0.1"},
			exitUsage, []string{"bad configuration option"}},
		{"auth failed", []string{"-D0", "-i", otherKey, "-o", "UserKnownHostsFile=" + f.knownHosts, "-p", f.port, f.srv.User + "@127.0.0.1"},
			exitConnection, []string{"authentication failed"}},
		{"refused", []string{"-D0", "-i", f.key, "-p", fmt.Sprint(free), f.srv.User + "@127.0.0.1"},
			exitConnection, []string{"connection refused"}},
		{"-L port busy", f.args("-L", busyPort+":127.0.0.1:1"), exitForward, []string{"-L " + busyPort, "address already in use"}},
		{"-D port busy", f.args("-D", busyPort), exitForward, []string{"-D " + busyPort, "address already in use"}},
		// The server listens on 127.0.0.1 only.
		{"-6 to an IPv4 server", append([]string{"-6"}, f.args("-D", "0")...), exitConnection, []string{"tcp6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runSync(t, 30*time.Second, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// A server that refuses remote forwards: exit 3 at start, and with
// ExitOnForwardFailure=no the other forwards run.
func TestOpenSSHRemoteForwardRefused(t *testing.T) {
	f := newFixture(t, "AllowTcpForwarding local")
	code, _, stderr := runSync(t, 30*time.Second, f.args("-R", "0:127.0.0.1:1")...)
	if code != exitForward || !strings.Contains(stderr, "refused") {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitForward, stderr)
	}
	o := origin(t)
	c := startCLI(t, f.args("-o", "ExitOnForwardFailure=no", "-R", "0:127.0.0.1:1", "-L", "0:"+o.Listener.Addr().String())...)
	if got, err := httpGet("http://" + c.addr("-L", 0) + "/x"); err != nil || got != "origin:/x" {
		t.Fatalf("-L beside a refused -R: %q %v", got, err)
	}
	var b strings.Builder
	c.s.writeStatus(&b)
	if !strings.Contains(b.String(), "retrying") {
		t.Errorf("status does not show the -R retrying:\n%s", b.String())
	}
}

// With ExitOnForwardFailure=no, a local port that is busy at start is taken
// once it is free.
func TestForwardRetriedLater(t *testing.T) {
	f := newFixture(t)
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busy := blocker.Addr().String()
	o := origin(t)
	c := startCLI(t, f.args("-o", "ExitOnForwardFailure=no", "-L", busy+":"+o.Listener.Addr().String())...)
	blocker.Close()
	if !eventually(10*time.Second, 200*time.Millisecond, func() bool {
		var got string
		got, err = httpGet("http://" + busy + "/late")
		return err == nil && got == "origin:/late"
	}) {
		t.Fatalf("-L on %s not set up 10s after the port was freed: %v\n%s", busy, err, c.stderr)
	}
}

// The signals, on the command as a process: SIGUSR1 writes the status;
// SIGTERM stops listening and lets an open tunnel finish; the grace period
// bounds that.
func TestSignals(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")

	start := func(t *testing.T, extra ...string) (*exec.Cmd, *testutil.SyncBuffer, string, chan error) {
		args := f.args(append([]string{"-v", "-L", "0:" + echo.Addr().String()}, extra...)...)
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1")
		stderr := &testutil.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		done := make(chan struct{})
		go func() { exited <- cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
			if t.Failed() {
				t.Logf("sshdial stderr:\n%s", stderr)
			}
		})
		addr := waitFor(t, stderr, `listen=`, 30*time.Second)
		return cmd, stderr, addr, exited
	}

	t.Run("graceful", func(t *testing.T) {
		cmd, stderr, addr, exited := start(t, "--grace", "20s")
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := testutil.RoundTrip(conn, "before"); err != nil {
			t.Fatal(err)
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		waitFor(t, stderr, "open 1, total 1", 10*time.Second)

		cmd.Process.Signal(syscall.SIGTERM)
		waitFor(t, stderr, "waiting for open tunnels", 10*time.Second)
		if c2, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c2.Close()
			t.Error("the -L port still accepts after SIGTERM")
		}
		if err := testutil.RoundTrip(conn, "during the grace period"); err != nil {
			t.Fatalf("the open tunnel broke at SIGTERM: %v", err)
		}
		select {
		case err := <-exited:
			t.Fatalf("exited (%v) with a tunnel open, within the grace period", err)
		case <-time.After(300 * time.Millisecond):
		}
		conn.Close()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit: %v, want code 0", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still running 10s after the last tunnel closed")
		}
	})

	t.Run("second-signal", func(t *testing.T) {
		cmd, stderr, addr, exited := start(t, "--grace", "1m")
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := testutil.RoundTrip(conn, "x"); err != nil {
			t.Fatal(err)
		}
		cmd.Process.Signal(syscall.SIGINT)
		waitFor(t, stderr, "a second ^C (or SIGTERM) closes them at once", 10*time.Second)
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit: %v, want code 0", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still running 10s after a second SIGINT")
		}
		out := stderr.String()
		if !strings.Contains(out, "second signal: closing open tunnels") || strings.Contains(out, "grace period over") {
			t.Errorf("after a second signal the log should say so, not that the grace period is over:\n%s", out)
		}
	})

	t.Run("grace-over", func(t *testing.T) {
		cmd, _, addr, exited := start(t, "--grace", "300ms")
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := testutil.RoundTrip(conn, "x"); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit: %v, want code 0", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still running 10s after SIGTERM with --grace 300ms")
		}
		if d := time.Since(begin); d < 250*time.Millisecond {
			t.Errorf("exited after %v, before the grace period", d)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the tunnel is still open after the grace period: %v", err)
		}
	})
}

// waitFor waits until out holds marker and returns the word after it.
func waitFor(t *testing.T, out *testutil.SyncBuffer, marker string, timeout time.Duration) string {
	t.Helper()
	var s string
	if !eventually(timeout, 20*time.Millisecond, func() bool { s = out.String(); return strings.Contains(s, marker) }) {
		t.Fatalf("no %q after %v:\n%s", marker, timeout, s)
	}
	rest := s[strings.Index(s, marker)+len(marker):]
	if j := strings.IndexAny(rest, " \n"); j >= 0 {
		return rest[:j]
	}
	return rest
}

// The command on a terminal (script(1) gives it one) with an encrypted
// identity file: it asks for the passphrase without echo, logs in with the
// key, and forwards.
func TestPassphrasePromptOnTerminal(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	key := f.encryptedClientKey(t, "open sesame")
	term := onTerminal(t, nil, execLine(os.Args[0], "-N", "-v", "-L", "0:"+echo.Addr().String(), "-i", key,
		"-o", "UserKnownHostsFile="+f.knownHosts, "-o", "StrictHostKeyChecking=yes", "-p", f.port, f.srv.User+"@127.0.0.1"))
	out, stdin := term.out, term.in

	waitFor(t, out, "Enter passphrase for key '"+key+"': ", 30*time.Second)
	io.WriteString(stdin, "open sesame\r")
	addr := waitFor(t, out, "listen=", 30*time.Second)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := testutil.RoundTrip(conn, "through a key that was encrypted"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "sesame") {
		t.Fatalf("the passphrase was echoed:\n%s", out)
	}
}

func init() {
	watchTestProcess = func() {
		pid, err := strconv.Atoi(os.Getenv("SSHDIAL_TEST_WATCH_PID"))
		if err != nil {
			return
		}
		go func() {
			for {
				time.Sleep(200 * time.Millisecond) // the watchdog's pace: the parent's death has no event here
				if syscall.Kill(pid, 0) != nil {
					os.Exit(exitError)
				}
			}
		}()
	}
}

// -f: the command sets the forwards up in the foreground, then goes on in
// the background while the foreground exits 0; a failure before that is the
// foreground's exit code.
func TestBackground(t *testing.T) {
	// The background process is orphaned when the foreground exits: make
	// this process its reaper, so that it can be waited for.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	// sshd's per-connection processes are orphaned here too: reap them.
	t.Cleanup(advReapOrphans)
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	run := func(t *testing.T, args ...string) (code int, stderr string) {
		errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		defer errFile.Close()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1", "SSHDIAL_TEST_WATCH_PID="+strconv.Itoa(os.Getpid()))
		cmd.Stderr = errFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the foreground of -f did not return within 30s")
		}
		b, _ := os.ReadFile(errFile.Name())
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(b)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(b)
	}

	t.Run("ready", func(t *testing.T) {
		code, stderr := run(t, f.args("-f", "-L", "0:"+echo.Addr().String())...)
		if code != exitOK {
			t.Fatalf("exit %d, want 0:\n%s", code, stderr)
		}
		addr := regexp.MustCompile(`listen=(\S+)`).FindStringSubmatch(stderr)
		pidText := regexp.MustCompile(`going to the background" pid=(\d+)`).FindStringSubmatch(stderr)
		if addr == nil || pidText == nil {
			t.Fatalf("no listen address or pid in:\n%s", stderr)
		}
		pid, _ := strconv.Atoi(pidText[1])
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		conn, err := net.Dial("tcp", addr[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := testutil.RoundTrip(conn, "to the background"); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if sid, err := unix.Getsid(pid); err != nil || sid != pid {
			t.Errorf("the background process is not in a session of its own: sid %d, %v", sid, err)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() {
			var ws unix.WaitStatus
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == nil && ws.ExitStatus() != exitOK {
				err = fmt.Errorf("exit status %d", ws.ExitStatus())
			}
			exited <- err
		}()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("the background process after SIGTERM: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the background process still runs 20s after SIGTERM")
		}
	})

	t.Run("fails-in-foreground", func(t *testing.T) {
		args := f.args("-f", "-L", "0:"+echo.Addr().String())
		for i, a := range args {
			if strings.HasPrefix(a, "UserKnownHostsFile=") {
				args[i] = "UserKnownHostsFile=/dev/null"
			}
		}
		code, stderr := run(t, args...)
		if code != exitConnection || !strings.Contains(stderr, "ssh-keyscan") {
			t.Fatalf("exit %d, want %d with the host key's message:\n%s", code, exitConnection, stderr)
		}
	})
}

// -4 and -6 also pick the loopback address local listeners bind by default.
func TestAddressFamilyOfLocalListeners(t *testing.T) {
	f := newFixture(t)
	c := startCLI(t, append([]string{"-4"}, f.args("-D", "0")...)...)
	if addr := c.addr("-D", 0); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("-4 -D 0 listens on %s, want 127.0.0.1", addr)
	}
	s := &session{o: &options{family: "inet6"}}
	l, err := s.listenLocal(endpoint{port: 0})
	if err != nil {
		t.Fatalf("-6: listening on the IPv6 loopback: %v", err)
	}
	defer l.Close()
	if addr := l.Addr().String(); !strings.HasPrefix(addr, "[::1]:") {
		t.Errorf("-6 listens on %s, want [::1]", addr)
	}
}

// A start that fails says why first: no "Dialer closed" before the cause
// (none at all when the connection itself failed).
func TestFailedStartCauseFirst(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	runCLI := func(args ...string) (int, string) {
		var stderr testutil.SyncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		code := run(ctx, args, io.Discard, &stderr)
		return code, stderr.String()
	}

	t.Run("connection", func(t *testing.T) {
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(closed.Addr().String())
		closed.Close()
		args := f.args("-v", "-L", "0:"+echo.Addr().String())
		args[len(args)-2] = port // -p
		code, stderr := runCLI(args...)
		if code != exitConnection || strings.Contains(stderr, "Dialer closed") {
			t.Errorf("exit %d (want %d), and no 'Dialer closed':\n%s", code, exitConnection, stderr)
		}
	})
	t.Run("forward", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		code, stderr := runCLI(f.args("-v", "-L", busy.Addr().String()+":"+echo.Addr().String())...)
		cause := strings.Index(stderr, "address already in use")
		closed := strings.Index(stderr, "Dialer closed")
		if code != exitForward || cause < 0 || (closed >= 0 && closed < cause) {
			t.Errorf("exit %d (want %d), the cause before any 'Dialer closed':\n%s", code, exitForward, stderr)
		}
	})
}
