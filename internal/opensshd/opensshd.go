// Package opensshd runs OpenSSH's sshd as a throwaway process on 127.0.0.1
// for tests: a temporary directory holds its config, host key and
// authorized_keys, and the test's cleanup stops it by PID.
package opensshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/portwait"
	"github.com/sshdial/sshdial/internal/syncbuf"
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
	stderr           *syncbuf.Buffer
	exited           chan struct{}
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

// ErrNotInstalled is returned by Launch when sshd is not installed.
var ErrNotInstalled = errors.New("sshd not found: install openssh-server")

// Start starts sshd with the given extra sshd_config lines and stops it when
// the test ends. Without sshd the test is skipped, or fails when RequireEnv
// is set.
func Start(t testing.TB, extraConfig ...string) *Server {
	t.Helper()
	s, err := Launch(extraConfig...)
	if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) == "" {
		t.Skip("sshd not found: install openssh-server (the project's test command does)")
	}
	if err != nil {
		t.Fatalf("%v (%s is set)", err, RequireEnv)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("sshd stderr:\n%s", s.Stderr())
		}
	})
	return s
}

// Launch starts sshd with the given extra sshd_config lines. The caller
// stops it with Close.
func Launch(extraConfig ...string) (*Server, error) {
	bin := Path()
	if bin == "" {
		return nil, ErrNotInstalled
	}
	if os.Geteuid() == 0 {
		// Privilege separation needs this directory when run as root.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "opensshd")
	if err != nil {
		return nil, err
	}
	s, err := launch(bin, dir, u.Username, extraConfig)
	if err != nil {
		os.RemoveAll(dir)
	}
	return s, err
}

func launch(bin, dir, userName string, extraConfig []string) (*Server, error) {
	hostSigner, _, hostPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	clientSigner, clientPrivate, _, err := newKey()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "host_key"), pem.EncodeToMemory(hostPEM), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{
			User:             userName,
			HostKey:          hostSigner.PublicKey(),
			ClientKey:        clientSigner,
			ClientPrivateKey: clientPrivate,
			Dir:              dir,
			stderr:           &syncbuf.Buffer{},
		}
		if lastErr = s.start(bin, extraConfig); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("starting sshd: %w", lastErr)
}

func (s *Server) start(bin string, extraConfig []string) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	// sshd takes the first value of a keyword: the extra lines come first
	// so that they can override the defaults below.
	config := append(slices.Clone(extraConfig),
		"ListenAddress "+s.Addr,
		"HostKey "+filepath.Join(s.Dir, "host_key"),
		"AuthorizedKeysFile "+filepath.Join(s.Dir, "authorized_keys"),
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding yes",
		"MaxStartups 200",
		"LogLevel ERROR",
	)

	configPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(configPath, []byte(strings.Join(config, "\n")+"\n"), 0o600); err != nil {
		return err
	}

	s.Cmd = exec.Command(bin, "-D", "-e", "-f", configPath)
	s.Cmd.Stderr = s.stderr
	// Its own process group, so that stopping it also stops the
	// per-connection processes it forked.
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.Cmd.WaitDelay = 5 * time.Second
	if err := s.Cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() {
		s.Cmd.Wait()
		close(s.exited)
	}()

	err = portwait.Wait(s.Addr, 10*time.Second, s.exited)
	if errors.Is(err, portwait.ErrExited) {
		return fmt.Errorf("sshd exited: %s", s.stderr.String())
	}
	if err != nil {
		s.stop()
		return fmt.Errorf("sshd: %v; %s", err, s.stderr.String())
	}
	return nil
}

func (s *Server) stop() {
	syscall.Kill(-s.Cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// Close stops sshd and the processes it forked, by process group, and
// removes its directory.
func (s *Server) Close() {
	s.stop()
	os.RemoveAll(s.Dir)
}

// Stderr returns what sshd logged.
func (s *Server) Stderr() string { return s.stderr.String() }

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

func newKey() (ssh.Signer, ed25519.PrivateKey, *pem.Block, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	return signer, key, block, err
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
