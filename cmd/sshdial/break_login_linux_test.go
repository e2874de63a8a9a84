package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// passwordServer is an in-process server that takes the password
// "open-sesame" only, with a known_hosts file naming it as the given
// names.
func passwordServer(t *testing.T, names ...string) (srv *sshtest.Server, kh string) {
	srv = sshtest.NewUnstartedServer()
	srv.Config.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no keys")
	}
	srv.Config.PasswordCallback = func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if string(pw) == "open-sesame" {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}
	srv.Start()
	t.Cleanup(srv.Close)
	kh = filepath.Join(t.TempDir(), "known_hosts")
	var lines string
	for _, n := range append(names, knownhosts.Normalize(srv.Addr())) {
		lines += knownhosts.Line([]string{n}, srv.HostKey()) + "\n"
	}
	if err := os.WriteFile(kh, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, kh
}

var promptRE = regexp.MustCompile(`\S+'s password: `)

// TestBreakPasswordPromptAsSSH: the password prompt names user@host as
// ssh's does, ssh being the oracle: -l, the destination's user@ given
// before -l, an -o User after the destination, an alias whose HostName
// and User come from the config, HostKeyAlias (ssh names the host by it).
func TestBreakPasswordPromptAsSSH(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatal("no ssh, and SSHDIAL_REQUIRE_SSHD is set")
		}
		t.Skip("no ssh")
	}
	srv, kh := passwordServer(t, "myalias")
	host, port, _ := net.SplitHostPort(srv.Addr())
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("Host box\n  HostName %s\n  User cfguser\n  Port %s\n", host, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "SSH_AUTH_SOCK="}
	for _, args := range [][]string{
		{"-l", "pwuser", "-p", port, host},
		{"-p", port, "dest@" + host, "-l", "pwuser"},
		{"-p", port, "dest@" + host, "-o", "User=later"},
		{"box"},
		{"-l", "pwuser", "box"},
		{"-l", "pwuser", "-o", "HostKeyAlias=myalias", "box"},
	} {
		common := []string{"-F", cfg, "-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-o", "PreferredAuthentications=password", "-o", "ConnectTimeout=20"}
		want := waitPrompt(t, onTerminal(t, env, execLine(append(append([]string{sshPath, "-N"}, common...), args...)...)), "ssh")
		got := waitPrompt(t, onTerminal(t, env, execLine(append(append([]string{os.Args[0], "-N", "-D", "127.0.0.1:0"}, common...), args...)...)), "sshdial")
		if got != want {
			t.Errorf("%q: sshdial asks %q, ssh asks %q", args, got, want)
		}
	}
}

// waitPrompt waits for the password prompt on out and returns it.
func waitPrompt(t *testing.T, term *terminal, who string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := promptRE.FindString(term.out.String()); m != "" {
			return m
		}
		select {
		case <-term.done:
			t.Fatalf("%s exited (status %d) without asking:\n%s", who, term.code, term.out)
		default:
		}
	}
	t.Fatalf("%s never asked:\n%s", who, term.out)
	return ""
}

// TestBreakInterruptAtPasswordPrompt: ^C typed at the password prompt
// (the terminal sends SIGINT), and SIGTERM while it shows, end sshdial
// with status 255 and a message, as an interrupted connect does.
func TestBreakInterruptAtPasswordPrompt(t *testing.T) {
	srv, kh := passwordServer(t)
	host, port, _ := net.SplitHostPort(srv.Addr())
	for _, how := range []string{"^C", "SIGTERM"} {
		env := []string{"HOME=" + t.TempDir(), "SSH_AUTH_SOCK="}
		term := onTerminal(t, env, execLine(os.Args[0], "-N", "-D", "127.0.0.1:0", "-F", "none",
			"-o", "UserKnownHostsFile="+kh, "-o", "ConnectTimeout=60", "-l", "pwuser", "-p", port, host))
		waitPrompt(t, term, "sshdial")
		if how == "^C" {
			io.WriteString(term.in, "\x03")
		} else {
			syscall.Kill(term.pid(t), syscall.SIGTERM)
		}
		if code := term.exit(t, 20*time.Second); code != exitConnection {
			t.Fatalf("%s: exit status %d, want %d", how, code, exitConnection)
		}
		if !strings.Contains(term.out.String(), "interrupted") {
			t.Fatalf("%s: no message that it was interrupted", how)
		}
	}
}

// TestBreakInterruptWithProxyCommand: SIGINT while a ProxyCommand that
// never speaks SSH runs exits 255 with a message, and the command does not
// outlive sshdial.
func TestBreakInterruptWithProxyCommand(t *testing.T) {
	marker := fmt.Sprintf("347.%d", os.Getpid())
	cmd := exec.Command(os.Args[0], "-F", "none", "-o", "ProxyCommand=sleep "+marker, "-o", "ConnectTimeout=60", "-D", "127.0.0.1:0", "u@h")
	cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1", "HOME="+t.TempDir(), "SSH_AUTH_SOCK=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A file, not a pipe: the ProxyCommand inherits it, and Wait must
	// not wait for the command to close it.
	errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd.Stderr = errFile
	stderr := fileText(errFile.Name())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	sleeping := func() bool { return exec.Command("pgrep", "-f", "^sleep "+regexp.QuoteMeta(marker)+"$").Run() == nil }
	for deadline := time.Now().Add(20 * time.Second); !sleeping(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the ProxyCommand never started:\n%s", stderr)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitConnection {
			t.Fatalf("exit %v, want status %d\n%s", err, exitConnection, stderr)
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Fatalf("no message that it was interrupted:\n%s", stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sshdial did not exit after SIGINT\n%s", stderr)
	}
	for deadline := time.Now().Add(10 * time.Second); sleeping(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			out, _ := exec.Command("pgrep", "-f", "^sleep "+regexp.QuoteMeta(marker)+"$").Output()
			for _, f := range strings.Fields(string(out)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			t.Fatal("the ProxyCommand outlived sshdial")
		}
	}
}

// fileText shows a file's text when formatted.
type fileText string

func (f fileText) String() string {
	b, _ := os.ReadFile(string(f))
	return string(b)
}
