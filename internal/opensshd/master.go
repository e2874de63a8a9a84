package opensshd

import (
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testproc"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Master is OpenSSH's ssh running as a ControlMaster (`ssh -M -N -S sock`)
// logged in to a Server, for tests and benchmarks of connection sharing.
type Master struct {
	// Sock is the control socket, in a short temporary directory (Unix
	// socket paths are limited to about 100 bytes).
	Sock string
	// Dir holds the socket, the client key and known_hosts; the ssh
	// command line in it is what Args says.
	Dir  string
	Args []string
	proc *testproc.Process
}

// LaunchMaster starts `ssh -M -N -S sock` to s with ControlPersist=no and
// the extra ssh arguments, and waits until it answers on its control
// socket (at most 20 seconds). The caller stops it with Close.
func (s *Server) LaunchMaster(extraArgs ...string) (*Master, error) {
	if _, err := exec.LookPath("ssh"); err != nil {
		return nil, fmt.Errorf("%w (ssh, the client)", ErrNotInstalled)
	}
	dir, err := os.MkdirTemp("", "sshmaster")
	if err != nil {
		return nil, err
	}
	m, err := s.launchMaster(dir, extraArgs)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return m, nil
}

func (s *Server) launchMaster(dir string, extraArgs []string) (*Master, error) {
	block, err := ssh.MarshalPrivateKey(s.ClientPrivateKey, "")
	if err != nil {
		return nil, err
	}
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	kh := filepath.Join(dir, "known_hosts")
	var lines []string
	for _, k := range s.HostKeys {
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k))
	}
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, err
	}
	m := &Master{Sock: filepath.Join(dir, "s"), Dir: dir}
	m.Args = append([]string{"-M", "-N", "-S", m.Sock,
		"-F", "/dev/null",
		"-o", "ControlPersist=no",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + kh,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-i", key, "-p", port, "-l", s.User},
		extraArgs...)
	m.Args = append(m.Args, host)
	m.proc, err = testproc.Launch(testproc.Options{}, "ssh", m.Args...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := helloFrom(m.Sock)
		if err == nil {
			return m, nil
		}
		select {
		case <-m.proc.Exited():
			return nil, fmt.Errorf("ssh master exited: %v\n%s", m.proc.Wait(), m.proc.Output())
		default:
		}
		if time.Now().After(deadline) {
			m.proc.Stop()
			return nil, fmt.Errorf("ssh master does not answer on %s: %v\n%s", m.Sock, err, m.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// helloFrom connects to a control socket and reads the start of the
// master's hello (PROTOCOL.mux: length, MUX_MSG_HELLO, version 4).
func helloFrom(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var b [12]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(b[4:]) != 1 || binary.BigEndian.Uint32(b[8:]) != 4 {
		return errors.New("not a mux hello")
	}
	return nil
}

// StartMaster is LaunchMaster for tests: it skips the test when ssh is
// missing (fails it when RequireEnv is set), fails it when the master does
// not start, and stops the master when the test ends.
func (s *Server) StartMaster(t testing.TB, extraArgs ...string) *Master {
	t.Helper()
	m, err := s.LaunchMaster(extraArgs...)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv(RequireEnv) == "" {
			t.Skip("ssh not found: install openssh-client")
		}
		t.Fatalf("%v (%s is set)", err, RequireEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		if t.Failed() {
			t.Logf("ssh master output:\n%s", m.Output())
		}
	})
	return m
}

// Pid returns the master's process ID.
func (m *Master) Pid() int { return m.proc.Pid() }

// Kill kills the master with SIGKILL and waits until it has exited; its
// socket file stays behind, as after a crash.
func (m *Master) Kill() { m.proc.Stop() }

// Exited is closed once the master has exited.
func (m *Master) Exited() <-chan struct{} { return m.proc.Exited() }

// Output returns what the master printed.
func (m *Master) Output() string { return m.proc.Output() }

// Close kills the master and removes its directory. Calling it again does
// nothing more.
func (m *Master) Close() {
	m.proc.Stop()
	os.RemoveAll(m.Dir)
}
