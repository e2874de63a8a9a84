package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/net/proxy"
)

// -S and -o ControlPath print as ssh -G prints them: -S wins over -o
// ControlPath whatever the order, the last -S wins, -S none is no path,
// and tokens expand.
func TestControlPathFlagLikeSSH(t *testing.T) {
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("ssh not installed")
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("Host cfg\n  ControlPath /tmp/cfg-%C\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-S", "/tmp/s-%h-%p-%r", "h"},
		{"-S", "none", "cfg"},
		{"-S", "/tmp/a b/%n.%%", "cfg"},
		{"-o", "ControlPath=/tmp/o-%h", "-S", "/tmp/s-%h", "h"},
		{"-S", "/tmp/s-%h", "-o", "ControlPath=/tmp/o-%h", "h"},
		{"-S", "/tmp/first", "-S", "/tmp/second-%u", "h"},
		{"-o", "ControlPath=/tmp/o-%C", "-p", "2200", "bob@h"},
		{"cfg"},
	} {
		args = append([]string{"-G", "-F", cfg}, args...)
		code, out, stderr := runSync(t, 20*time.Second, args...)
		if code != 0 {
			t.Fatalf("sshdial %q: exit %d: %s", args, code, stderr)
		}
		theirs, err := exec.Command(ssh, args...).Output()
		if err != nil {
			t.Fatalf("ssh %q: %v", args, err)
		}
		ours, want := gLines(out)["controlpath"], gLines(string(theirs))["controlpath"]
		if strings.Join(ours, "\n") != strings.Join(want, "\n") {
			t.Errorf("%q: sshdial -G controlpath %q, ssh -G %q", args, ours, want)
		}
	}
}

// sshdLogins counts the logins in sshd's log.
func sshdLogins(srv *opensshd.Server) int { return strings.Count(srv.Stderr(), "Accepted publickey") }

// waitSSHDLogins waits until sshd's log shows want logins, and fails when
// it shows another number (more never become fewer).
func waitSSHDLogins(t *testing.T, srv *opensshd.Server, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sshdLogins(srv) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := sshdLogins(srv); got != want {
		t.Fatalf("%s: %d logins in sshd's log, want %d:\n%s", what, got, want, srv.Stderr())
	}
}

// With a ControlMaster named by -S or by -o ControlPath (tokens
// expanded), -L, -D and -W tunnels go through the master: sshd's log shows the
// master's login only. -S none shares nothing; a master that dies leaves
// the next tunnel to sshdial's own login.
func TestControlMasterTunnels(t *testing.T) {
	f := newFixture(t, "LogLevel INFO")
	m := f.srv.StartMaster(t)
	logins := 1
	waitSSHDLogins(t, f.srv, logins, "the master's login")
	target := testutil.EchoServer(t, "tcp").Addr().String()
	// The master where ControlPath %h-%p-%r says, for -o ControlPath.
	dir := testutil.ShortTempDir(t)
	host, port, _ := net.SplitHostPort(f.srv.Addr)
	if err := os.Symlink(m.Sock, filepath.Join(dir, "cm-"+host+"-"+port+"-"+f.srv.User)); err != nil {
		t.Fatal(err)
	}
	tunnels := func(t *testing.T, c *cli) {
		t.Helper()
		for i := 0; i < 3; i++ {
			conn, err := net.DialTimeout("tcp", c.addr("-L", 0), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			err = testutil.RoundTrip(conn, "through -L")
			conn.Close()
			if err != nil {
				t.Fatalf("-L: %v", err)
			}
			socks, err := proxy.SOCKS5("tcp", c.addr("-D", 0), nil, proxy.Direct)
			if err != nil {
				t.Fatal(err)
			}
			conn, err = socks.(proxy.ContextDialer).DialContext(context.Background(), "tcp", target)
			if err != nil {
				t.Fatalf("-D: %v", err)
			}
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			err = testutil.RoundTrip(conn, "through -D")
			conn.Close()
			if err != nil {
				t.Fatalf("-D: %v", err)
			}
		}
	}
	for _, way := range [][]string{
		{"-S", m.Sock},
		{"-o", "ControlPath=" + filepath.Join(dir, "cm-%h-%p-%r")},
	} {
		t.Run(way[0], func(t *testing.T) {
			c := startCLI(t, f.args(append(way, "-L", "0:"+target, "-D", "0")...)...)
			tunnels(t, c)
			c.stop(t)
			waitSSHDLogins(t, f.srv, logins, strings.Join(way, " ")+": sshdial logged in by itself")
		})
	}

	t.Run("W", func(t *testing.T) {
		argv := f.stdioCommand(t, target)
		argv = append([]string{argv[0], "-S", m.Sock}, argv[1:]...)
		code, out, stderr := runBinary(t, "through -W", argv...)
		if code != 0 || out != "through -W" {
			t.Fatalf("sshdial -S -W exited %d, stdout %q\nstderr: %s", code, out, stderr)
		}
		waitSSHDLogins(t, f.srv, logins, "-S with -W: sshdial logged in by itself")
	})

	t.Run("S-none", func(t *testing.T) {
		c := startCLI(t, f.args("-S", "none", "-o", "ControlPath="+m.Sock, "-L", "0:"+target, "-D", "0")...)
		tunnels(t, c)
		c.stop(t)
		logins++
		waitSSHDLogins(t, f.srv, logins, "-S none")
	})

	t.Run("master-dies", func(t *testing.T) {
		c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+target, "-D", "0")...)
		tunnels(t, c)
		waitSSHDLogins(t, f.srv, logins, "through the master")
		m.Kill()
		tunnels(t, c)
		logins++
		waitSSHDLogins(t, f.srv, logins, "after the master died")
		if !strings.Contains(c.stderr.String(), "the ControlMaster is gone") {
			t.Errorf("the fallback is not logged:\n%s", c.stderr)
		}
		c.stop(t)
	})
}
