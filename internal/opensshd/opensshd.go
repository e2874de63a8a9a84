// Package opensshd runs OpenSSH's sshd as a throwaway process on 127.0.0.1
// for tests: a temporary directory holds its config, host key and
// authorized_keys, and the test's cleanup stops it by PID.
package opensshd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// RequireEnv names the environment variable that turns a missing sshd from a
// skipped test into a failed one. The project's test command sets it.
const RequireEnv = "SSHDIAL_REQUIRE_SSHD"

// Server is a running sshd.
type Server struct {
	Addr      string // 127.0.0.1:port
	User      string
	HostKey   ssh.PublicKey
	ClientKey ssh.Signer
	// ClientPrivateKey is ClientKey's private key, for writing key files.
	ClientPrivateKey ed25519.PrivateKey
	Dir              string // the temporary directory with sshd_config and keys
	Cmd              *exec.Cmd
	stderr           *lockedBuffer
}

// Path returns the sshd binary, or "" when OpenSSH's server is not installed.
func Path() string {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd"
	}
	return ""
}

// Start starts sshd with the given extra sshd_config lines and stops it when
// the test ends. Without sshd the test is skipped, or fails when RequireEnv
// is set.
func Start(t testing.TB, extraConfig ...string) *Server {
	t.Helper()
	bin := Path()
	if bin == "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("sshd not found and %s is set: install openssh-server", RequireEnv)
		}
		t.Skip("sshd not found: install openssh-server (the project's test command does)")
	}
	if os.Geteuid() == 0 {
		// Privilege separation needs this directory when run as root.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	hostSigner, _, hostPEM := newKey(t)
	clientSigner, clientPrivate, _ := newKey(t)
	write(t, filepath.Join(dir, "host_key"), pem.EncodeToMemory(hostPEM), 0o600)
	write(t, filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600)

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{
			User:             u.Username,
			HostKey:          hostSigner.PublicKey(),
			ClientKey:        clientSigner,
			ClientPrivateKey: clientPrivate,
			Dir:              dir,
			stderr:           &lockedBuffer{},
		}
		if lastErr = s.start(t, bin, extraConfig); lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting sshd: %v", lastErr)
	return nil
}

func (s *Server) start(t testing.TB, bin string, extraConfig []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	config := []string{
		"ListenAddress " + s.Addr,
		"HostKey " + filepath.Join(s.Dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding yes",
		"MaxStartups 200",
		"LogLevel ERROR",
	}
	config = append(config, extraConfig...)
	configPath := filepath.Join(s.Dir, "sshd_config")
	write(t, configPath, []byte(strings.Join(config, "\n")+"\n"), 0o600)

	s.Cmd = exec.Command(bin, "-D", "-e", "-f", configPath)
	s.Cmd.Stderr = s.stderr
	// Its own process group, so that stopping it also stops the
	// per-connection processes it forked.
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.Cmd.WaitDelay = 5 * time.Second
	if err := s.Cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		s.Cmd.Wait()
		close(exited)
	}()
	stop := func() {
		syscall.Kill(-s.Cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited: %s", s.stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("sshd did not listen on %s: %v; %s", s.Addr, err, s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("sshd stderr:\n%s", s.stderr.String())
		}
	})
	return nil
}

// ClientConfig returns a configuration that logs in with ClientKey and
// accepts only the server's host key.
func (s *Server) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	}
}

// Dial connects an SSH client to the server and closes it when the test
// ends.
func (s *Server) Dial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr, s.ClientConfig())
	if err != nil {
		t.Fatalf("ssh.Dial %s: %v\nsshd: %s", s.Addr, err, s.stderr.String())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newKey(t testing.TB) (ssh.Signer, ed25519.PrivateKey, *pem.Block) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, key, block
}

func write(t testing.TB, path string, data []byte, mode os.FileMode) {
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
