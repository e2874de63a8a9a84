package integration

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testproc"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
)

// The consumers dial names that resolve only behind the SSH server, as
// db.internal does behind a real bastion: a client that looks a name up
// itself fails, so a test that passes shows that the name went through the
// SSH channel unresolved.
//
// Every name maps to 127.0.0.1, where the real servers listen. sshtest maps
// them in its DialTarget and refuses everything else, IP addresses
// included. OpenSSH's sshd runs in a mount namespace of its own, with an
// /etc/hosts that lists them: only sshd and its children see that file.
var serverOnlyNames = []string{"db.internal", "cache.internal", "api.internal", "queue.internal", "web.internal"}

// behind returns addr (127.0.0.1:port) with its host replaced by name.
func behind(name, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return net.JoinHostPort(name, port)
}

var checkNamesOnce sync.Once
var checkNamesErr error

// requireUnresolvable fails the test if this process can resolve any of
// serverOnlyNames: the tests would then prove nothing.
func requireUnresolvable(t testing.TB) {
	t.Helper()
	checkNamesOnce.Do(func() {
		for _, name := range serverOnlyNames {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, name)
			cancel()
			if err == nil {
				checkNamesErr = fmt.Errorf("the test client resolves %s to %v: the tests need a name that resolves only behind the SSH server", name, addrs)
				return
			}
		}
	})
	if checkNamesErr != nil {
		t.Fatal(checkNamesErr)
	}
}

// namingServer returns an sshtest server that reaches serverOnlyNames (on
// any port) at 127.0.0.1 and refuses every other TCP target; unix sockets
// it dials as they are. dialed returns the TCP targets the server was
// asked for.
func namingServer(t testing.TB) (srv *sshtest.Server, dialed func() []string) {
	var mu sync.Mutex
	var asked []string
	srv = sshtest.NewUnstartedServer()
	srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		if network == "unix" {
			return d.DialContext(ctx, network, address)
		}
		mu.Lock()
		asked = append(asked, address)
		mu.Unlock()
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(serverOnlyNames, host) {
			return nil, fmt.Errorf("%s: no such host behind this server (only %v)", host, serverOnlyNames)
		}
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
}

// namedSSHD is OpenSSH's sshd in a mount namespace of its own whose
// /etc/hosts maps serverOnlyNames to 127.0.0.1. It is configured as
// internal/opensshd configures its sshd; opensshd has no way to wrap the
// command, so it is started here.
type namedSSHD struct {
	Addr    string
	User    string
	HostKey ssh.PublicKey
	Key     ssh.Signer
	KeyPEM  []byte // Key in OpenSSH's format, for key files
	proc    *testproc.Process
}

// startNamedSSHD starts a namedSSHD, stopped when the test ends. It needs
// root (for the mount namespace) and sshd: without either the test is
// skipped, or fails when SSHDIAL_REQUIRE_SSHD is set.
func startNamedSSHD(t testing.TB) *namedSSHD {
	t.Helper()
	requireUnresolvable(t)
	skip := func(why string) {
		if os.Getenv(opensshd.RequireEnv) != "" {
			t.Fatalf("%s (%s is set)", why, opensshd.RequireEnv)
		}
		t.Skip(why)
	}
	bin := opensshd.Path()
	if bin == "" {
		skip("sshd not found: install openssh-server (the project's test command does)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		skip("unshare not found (util-linux)")
	}
	if os.Geteuid() != 0 {
		skip("an sshd with its own /etc/hosts needs root, for the mount namespace")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation
		t.Fatal(err)
	}
	dir := testutil.ShortTempDir(t)

	hostPub, hostPEM := newKey(t)
	if err := os.WriteFile(filepath.Join(dir, "host_key"), hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	clientPub, clientPEM := newKey(t)
	client, err := ssh.ParsePrivateKey(clientPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	hosts := "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + strings.Join(serverOnlyNames, " ") + "\n"
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}

	var lastErr error
	for range 5 { // another process may take the free port first
		port, err := testproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		config := strings.Join([]string{
			"ListenAddress " + addr,
			"HostKey " + filepath.Join(dir, "host_key"),
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"UsePAM no",
			"StrictModes no",
			"PermitRootLogin prohibit-password",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"AllowTcpForwarding yes",
			"AllowStreamLocalForwarding yes",
			"MaxStartups 200",
			"LogLevel ERROR",
		}, "\n") + "\n"
		configFile := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		// unshare and sh exec, so the parent-death signal and the
		// process group reach sshd.
		script := fmt.Sprintf("mount --bind %s /etc/hosts && exec %s -D -e -f %s", hostsFile, bin, configFile)
		p, err := testproc.Launch(testproc.Options{}, unshare, "--mount", "--propagation", "private", "sh", "-c", script)
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = p.WaitListening(addr, 10*time.Second); lastErr != nil {
			p.Stop()
			continue
		}
		s := &namedSSHD{Addr: addr, User: "root", HostKey: hostPub, Key: client, KeyPEM: clientPEM, proc: p}
		t.Cleanup(func() {
			s.Signal(syscall.SIGCONT) // in case a test left it stopped
			p.Stop()
			if t.Failed() {
				t.Logf("sshd output:\n%s", p.Output())
			}
		})
		return s
	}
	t.Fatalf("starting sshd in its own mount namespace: %v", lastErr)
	return nil
}

func newKey(t testing.TB) (ssh.PublicKey, []byte) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pub, pem.EncodeToMemory(block)
}

// Dial connects an SSH client, closed when the test ends.
func (s *namedSSHD) Dial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.Key)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh.Dial %s: %v\nsshd: %s", s.Addr, err, s.proc.Output())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Signal sends sig to sshd and every process below it (the processes
// serving its connections start sessions of their own, outside its
// process group). SIGSTOP is a stalled network, SIGCONT the end of it.
func (s *namedSSHD) Signal(sig syscall.Signal) {
	for _, pid := range append(descendants(s.proc.Pid()), s.proc.Pid()) {
		syscall.Kill(pid, sig)
	}
}

// descendants returns the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// TestServerOnlyNames checks the fixture itself: the names resolve behind
// both servers and nowhere else.
func TestServerOnlyNames(t *testing.T) {
	requireUnresolvable(t)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	srv, dialed := namingServer(t)
	c, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sshd := startNamedSSHD(t)
	for name, client := range map[string]*ssh.Client{"sshtest": c, "openssh": sshd.Dial(t)} {
		conn, err := client.Dial("tcp", behind("db.internal", target.Addr().String()))
		if err != nil {
			t.Fatalf("%s: dialing db.internal: %v", name, err)
		}
		buf := make([]byte, 2)
		_, err = conn.Read(buf)
		conn.Close()
		if err != nil || string(buf) != "hi" {
			t.Fatalf("%s: read %q, %v", name, buf, err)
		}
		if _, err := client.Dial("tcp", behind("nowhere.invalid", target.Addr().String())); err == nil {
			t.Fatalf("%s resolves nowhere.invalid", name)
		}
	}
	if _, err := c.Dial("tcp", target.Addr().String()); err == nil {
		t.Fatal("sshtest reaches an IP address: it must refuse everything but serverOnlyNames")
	}
	t.Logf("sshtest was asked for %v", dialed())
}
