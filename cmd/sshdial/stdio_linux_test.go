package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// stdioCommand is the sshdial binary (this test binary as the command)
// with -W target, logging in to f's sshd.
func (f *fixture) stdioCommand(t *testing.T, target string) []string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{self, "-W", target}, f.args()[1:]...)
}

// runBinary runs argv with stdin, bounded in time, and returns its exit
// code, stdout and stderr.
func runBinary(t *testing.T, stdin string, argv ...string) (int, string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SSHDIAL_TEST_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true} // no terminal: no prompts
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("%q: %v\nstderr: %s", argv, err, errOut.String())
	return -1, "", ""
}

// ssh itself through sshdial -W as its ProxyCommand: a command runs on
// the server.
func TestStdioAsProxyCommandOfSSH(t *testing.T) {
	f := newFixture(t)
	proxy := strings.Join(f.stdioCommand(t, "%h:%p"), " ")
	code, out, stderr := runBinary(t, "", "ssh", "-F", "none", "-o", "BatchMode=yes", "-i", f.key,
		"-o", "UserKnownHostsFile="+f.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "ProxyCommand="+proxy, "-p", f.port, f.srv.User+"@127.0.0.1", "echo", "ran-through-W")
	if code != 0 || out != "ran-through-W\n" {
		t.Fatalf("ssh exited %d, stdout %q\nstderr: %s", code, out, stderr)
	}
	if stderr != "" {
		t.Errorf("sshdial -W wrote to stderr without -v: %s", stderr)
	}
}

// A script's use of -W: what it writes comes back from an echo server,
// stdin's end half-closes and the command exits 0; a target that refuses
// and an SSH server that is not there exit 255, as ssh -W does.
func TestStdioScripted(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	code, out, stderr := runBinary(t, "line one\nline two\n", f.stdioCommand(t, echo.Addr().String())...)
	if code != 0 || out != "line one\nline two\n" {
		t.Fatalf("exit %d, stdout %q\nstderr: %s", code, out, stderr)
	}

	closed := testutil.EchoServer(t, "tcp")
	addr := closed.Addr().String()
	closed.Close()
	code, out, stderr = runBinary(t, "x", f.stdioCommand(t, addr)...)
	if code != exitConnection || out != "" || !strings.Contains(stderr, "stdio forwarding to "+addr+" failed") {
		t.Fatalf("refused target: exit %d, stdout %q, stderr %s", code, out, stderr)
	}

	argv := f.stdioCommand(t, echo.Addr().String())
	f.srv.Close()
	if code, _, stderr := runBinary(t, "x", argv...); code != exitConnection {
		t.Fatalf("no SSH server: exit %d, stderr %s", code, stderr)
	}
}
