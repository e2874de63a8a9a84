// Package opensshd runs OpenSSH's sshd as a throwaway process on 127.0.0.1
// for tests: a temporary directory holds its config, host keys and
// authorized_keys, and the test's cleanup stops it. It is started with
// internal/testproc, so on Linux it also dies with the program that started
// it.
package opensshd

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
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
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testproc"
	"golang.org/x/crypto/ssh"
)

// RequireEnv names the environment variable that turns a missing sshd from a
// skipped test into a failed one. The project's test command sets it.
const RequireEnv = "SSHDIAL_REQUIRE_SSHD"

// Server is a running sshd.
type Server struct {
	Addr string // 127.0.0.1:port
	User string
	// HostKey is the first of HostKeys.
	HostKey ssh.PublicKey
	// HostKeys are the public host keys sshd offers, in the order of
	// Options.HostKeys.
	HostKeys  []ssh.PublicKey
	ClientKey ssh.Signer
	// ClientPrivateKey is ClientKey's private key, for writing key files.
	ClientPrivateKey ed25519.PrivateKey
	Dir              string // the temporary directory with sshd_config and keys
	// Cmd is the sshd command; read it, but do not start, wait for or
	// signal it: Close stops it.
	Cmd   *exec.Cmd
	proc  *testproc.Process
	bin   string
	hosts string // Options.Hosts
}

// KeyType is a type of host key that sshd can offer.
type KeyType string

// The host key types that Options.HostKeys may list.
const (
	Ed25519 KeyType = "ed25519"
	RSA     KeyType = "rsa" // 3072 bits, offered as rsa-sha2-512 and rsa-sha2-256
)

// Options says how LaunchWith and StartWith start sshd. The zero value
// starts it as Launch does.
type Options struct {
	// Config holds extra sshd_config lines. They come before the defaults,
	// so they override them: sshd keeps the first value of a keyword.
	Config []string
	// HostKeys lists the types of host key sshd offers, each at most once.
	// Empty means Ed25519 only.
	HostKeys []KeyType
	// Hosts, when not empty, is an /etc/hosts for sshd alone: sshd runs in
	// a mount namespace of its own where this text is mounted over
	// /etc/hosts, so that names resolve behind the server and nowhere
	// else. It needs Linux, root and unshare(1).
	Hosts string
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

// ErrNotInstalled is returned by Launch and LaunchWith when sshd is not
// installed.
var ErrNotInstalled = errors.New("sshd not found: install openssh-server")

// Start starts sshd with the given extra sshd_config lines and stops it when
// the test ends. Without sshd the test is skipped, or fails when RequireEnv
// is set.
func Start(t testing.TB, extraConfig ...string) *Server {
	t.Helper()
	return StartWith(t, Options{Config: extraConfig})
}

// StartWith is Start with options. Bad options fail the test.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := LaunchWith(opts)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv(RequireEnv) == "" {
			t.Skip("sshd not found: install openssh-server (the project's test command does)")
		}
		t.Fatalf("%v (%s is set)", err, RequireEnv)
	}
	if err != nil {
		t.Fatal(err)
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
	return LaunchWith(Options{Config: extraConfig})
}

// LaunchWith is Launch with options. It returns an error for an unknown or
// repeated host key type.
func LaunchWith(opts Options) (*Server, error) {
	keyTypes := opts.HostKeys
	if len(keyTypes) == 0 {
		keyTypes = []KeyType{Ed25519}
	}
	for i, kt := range keyTypes {
		if kt != Ed25519 && kt != RSA {
			return nil, fmt.Errorf("opensshd: unknown host key type %q", kt)
		}
		if slices.Contains(keyTypes[:i], kt) {
			return nil, fmt.Errorf("opensshd: host key type %q listed twice", kt)
		}
	}
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
	s, err := launch(bin, dir, u.Username, opts, keyTypes)
	if err != nil {
		os.RemoveAll(dir)
	}
	return s, err
}

func launch(bin, dir, userName string, opts Options, keyTypes []KeyType) (*Server, error) {
	var hostKeys []ssh.PublicKey
	var hostKeyFiles []string
	for _, kt := range keyTypes {
		pub, pemBlock, err := newHostKey(kt)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, "host_key_"+string(kt))
		if err := os.WriteFile(file, pem.EncodeToMemory(pemBlock), 0o600); err != nil {
			return nil, err
		}
		hostKeys = append(hostKeys, pub)
		hostKeyFiles = append(hostKeyFiles, file)
	}
	_, clientPrivate, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	clientSigner, err := ssh.NewSignerFromKey(clientPrivate)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &Server{
			User:             userName,
			HostKey:          hostKeys[0],
			HostKeys:         hostKeys,
			ClientKey:        clientSigner,
			ClientPrivateKey: clientPrivate,
			Dir:              dir,
			hosts:            opts.Hosts,
		}
		if lastErr = s.start(bin, opts.Config, hostKeyFiles); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("starting sshd: %w", lastErr)
}

// start runs sshd on a free port; another process may take the port first,
// so the caller retries.
func (s *Server) start(bin string, extraConfig, hostKeyFiles []string) error {
	port, err := testproc.FreePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	// sshd takes the first value of a keyword: the extra lines come first
	// so that they can override the defaults below.
	config := slices.Clone(extraConfig)
	config = append(config, "ListenAddress "+s.Addr)
	for _, f := range hostKeyFiles {
		config = append(config, "HostKey "+f)
	}
	config = append(config,
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

	s.bin = bin
	return s.run()
}

// run starts sshd with the config in s.Dir and waits until it listens.
func (s *Server) run() error {
	argv := []string{s.bin, "-D", "-e", "-f", filepath.Join(s.Dir, "sshd_config")}
	if s.hosts != "" {
		hostsFile := filepath.Join(s.Dir, "hosts")
		if err := os.WriteFile(hostsFile, []byte(s.hosts), 0o644); err != nil {
			return err
		}
		// unshare and sh exec, so that the process is sshd itself: the
		// parent-death signal, the process group and Signal reach it.
		argv = []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
			"mount --bind " + hostsFile + " /etc/hosts && exec " + strings.Join(argv, " ")}
	}
	p, err := testproc.Launch(testproc.Options{}, argv[0], argv[1:]...)
	if err != nil {
		return err
	}
	if err := p.WaitListening(s.Addr, 10*time.Second); err != nil {
		p.Stop()
		return err
	}
	s.proc, s.Cmd = p, p.Cmd()
	return nil
}

// Restart stops sshd, if it still runs, and starts it again on the same
// address with the same configuration and keys, as after a crash and a
// restart by the service manager. Established connections are not
// touched: their processes are not sshd's children in its group (see
// KillSessions on Linux). Restart must not run concurrently with Close or
// itself.
func (s *Server) Restart() error {
	s.proc.Stop()
	return s.run()
}

// Close kills sshd's process group, waits for sshd to exit and removes its
// directory. sshd's per-connection processes start sessions of their own,
// outside that group: they end when their client disconnects, and Close
// waits up to 5 seconds for them to let go of sshd's stderr. Calling Close
// again does nothing more.
func (s *Server) Close() {
	s.proc.Stop()
	os.RemoveAll(s.Dir)
}

// Stderr returns what sshd logged.
func (s *Server) Stderr() string { return s.proc.Output() }

// ClientConfig returns a configuration that logs in with ClientKey and
// accepts only the server's host keys (any of HostKeys).
func (s *Server) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: s.checkHostKey,
		Timeout:         10 * time.Second,
	}
}

func (s *Server) checkHostKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	for _, k := range s.HostKeys {
		if ssh.FixedHostKey(k)(hostname, remote, key) == nil {
			return nil
		}
	}
	return fmt.Errorf("opensshd: host key %s %s is not one of the server's", key.Type(), ssh.FingerprintSHA256(key))
}

// Dial connects an SSH client to the server and closes it when the test
// ends.
func (s *Server) Dial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", s.Addr, s.ClientConfig())
	if err != nil {
		t.Fatalf("ssh.Dial %s: %v\nsshd: %s", s.Addr, err, s.Stderr())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newHostKey returns a new host key of type kt: its public key and its
// private key in OpenSSH's PEM format.
func newHostKey(kt KeyType) (ssh.PublicKey, *pem.Block, error) {
	var key crypto.Signer
	var err error
	switch kt {
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case RSA:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		err = fmt.Errorf("opensshd: unknown host key type %q", kt)
	}
	if err != nil {
		return nil, nil, err
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	return pub, block, err
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) { return testproc.FreePort() }
