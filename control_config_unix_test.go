//go:build unix

package sshdial_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
)

// sshG returns what `ssh -G` prints for key with the config file cfg, for
// the user and address of srv.
func sshG(t *testing.T, srv *opensshd.Server, cfg, key string, args ...string) string {
	t.Helper()
	host, port := splitAddr(t, srv.Addr)
	args = append(append([]string{"-G", "-F", cfg}, args...), "-p", port, srv.User+"@"+host)
	out, err := exec.Command("ssh", args...).Output()
	require.NoError(t, err, "ssh -G")
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, _ := strings.Cut(line, " "); k == key {
			return v
		}
	}
	return ""
}

func splitAddr(t *testing.T, addr string) (host, port string) {
	host, port, ok := strings.Cut(addr, ":")
	require.True(t, ok, addr)
	return host, port
}

// waitLogins waits until sshd's log shows want logins in all, and fails
// when it shows more (the count only grows).
func waitLogins(t *testing.T, srv *opensshd.Server, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for logins(srv) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, want, logins(srv), "%s; sshd's log:\n%s", what, srv.Stderr())
}

// requireViaMaster dials an echo target through d a few times and checks
// that the Conns came through the master at sock (their LocalAddr).
func requireViaMaster(t *testing.T, d *sshdial.Dialer, sock string) {
	t.Helper()
	target := serve(t, "tcp", echo)
	for i := 0; i < 5; i++ {
		c, err := d.Dial("tcp", target.Addr().String())
		require.NoError(t, err)
		err = testutil.RoundTrip(c, "through the master")
		c.Close() // before any failure: the target's cleanup waits for it
		require.NoError(t, err)
		require.Equal(t, sock, c.LocalAddr().String(), "not dialed through the master")
	}
}

// The ControlPath of ~/.ssh/config, with its % tokens expanded as ssh
// expands them (ssh -G says where), makes Connect go through the master
// that answers there: sshd's log shows the master's login only, for any
// number of dials; ResolveConfig prints the path ssh -G prints. (Not %d
// and ~: ssh takes the home directory from the passwd entry, sshdial and
// this test from $HOME.)
func TestControlPathFromConfigFile(t *testing.T) {
	srv, m := sshdWithMaster(t)
	h := homeFor(t, srv)
	waitLogins(t, srv, 1, "the master's login")
	dir := testutil.ShortTempDir(t)
	for _, pattern := range []string{"cm-%C", "cm-%h-%p-%r", "cm-%n.%%-%u"} {
		cfg := h.write(t, "config", fmt.Sprintf("Host *\n  ControlPath %s\n", filepath.Join(dir, pattern)))
		want := sshG(t, srv, cfg, "controlpath")
		require.NotEmpty(t, want, "ssh -G prints no controlpath for %s", pattern)
		rc, err := sshdial.ResolveConfig(context.Background(), fmt.Sprintf("%s@%s", srv.User, srv.Addr))
		require.NoError(t, err)
		require.Equal(t, []string{want}, rc.Get("controlpath"), "ControlPath %s", pattern)

		// The master listens where ssh would look (a link to its socket).
		require.NoError(t, os.Symlink(m.Sock, want))
		d := connectTo(t, srv)
		requireViaMaster(t, d, want)
		d.Close()
		waitLogins(t, srv, 1, fmt.Sprintf("ControlPath %s: Connect logged in by itself", pattern))
		require.NoError(t, os.Remove(want))
	}
}

// ControlPath none, no master at the ControlPath, or ControlMaster yes:
// Connect logs in by itself, and says so when a master was looked for. An
// option wins over the config, both ways.
func TestControlPathFromConfigOwnConnection(t *testing.T) {
	srv, m := sshdWithMaster(t)
	h := homeFor(t, srv)
	waitLogins(t, srv, 1, "the master's login")
	total := 1
	dir := testutil.ShortTempDir(t)
	link := filepath.Join(dir, "cm")
	require.NoError(t, os.Symlink(m.Sock, link))

	// ControlPath none.
	h.write(t, "config", "Host *\n  ControlPath none\n")
	d := connectTo(t, srv)
	total++
	waitLogins(t, srv, total, "ControlPath none")
	requireEchoThrough(t, d)

	// No master there: own connection, logged.
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	h.write(t, "config", "Host *\n  ControlPath "+filepath.Join(dir, "nothing-%h")+"\n")
	d = connectTo(t, srv, sshdial.WithLogger(logger))
	total++
	waitLogins(t, srv, total, "no master")
	c, err := d.Dial("tcp", serve(t, "tcp", echo).Addr().String())
	require.NoError(t, err)
	err = testutil.RoundTrip(c, "own")
	c.Close()
	require.NoError(t, err)
	require.NotContains(t, c.LocalAddr().String(), "nothing")
	logged := logs.String()
	require.Contains(t, logged, "no ControlMaster answers")

	// The option wins over the config: none over a master there...
	h.write(t, "config", "Host *\n  ControlPath "+link+"\n")
	d = connectTo(t, srv, sshdial.WithControlPath("none"))
	total++
	waitLogins(t, srv, total, "WithControlPath(none) over the config's ControlPath")
	requireEchoThrough(t, d)
	// ... and a master over the config's none.
	h.write(t, "config", "Host *\n  ControlPath none\n")
	d = connectTo(t, srv, sshdial.WithControlPath(link))
	requireViaMaster(t, d, link)
	waitLogins(t, srv, total, "WithControlPath over the config's ControlPath none")
	// ... and WithControl's policy over the config's fallback.
	h.write(t, "config", "Host *\n  ControlPath "+link+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = sshdial.Connect(ctx, fmt.Sprintf("%s@%s", srv.User, srv.Addr),
		sshdial.WithControl(filepath.Join(dir, "nothing"), sshdial.ControlRequired))
	require.ErrorIs(t, err, sshdial.ErrNoControlMaster)
	waitLogins(t, srv, total, "WithControl(ControlRequired) with no master")
}

// ControlMaster as ssh reads it, checked against ssh itself: with no,
// auto and autoask ssh uses the running master, with yes and ask it
// connects by itself (to become a master, which sshdial never does).
// Connect with the same config lines makes the same logins.
func TestControlMasterValuesLikeSSH(t *testing.T) {
	srv, m := sshdWithMaster(t)
	homeFor(t, srv)
	waitLogins(t, srv, 1, "the master's login")
	total := 1
	dir := testutil.ShortTempDir(t)
	link := filepath.Join(dir, "cm")
	require.NoError(t, os.Symlink(m.Sock, link))
	target := serve(t, "tcp", echo)

	// ssh -W through the same command line as the master's, without -M.
	sshArgs := func(controlMaster string) []string {
		var args []string
		for i := 0; i < len(m.Args)-1; i++ {
			switch a := m.Args[i]; a {
			case "-M":
			case "-N":
				args = append(args, "-W", target.Addr().String())
			case "-S":
				i++
			default:
				args = append(args, a)
			}
		}
		return append(args, "-o", "ControlMaster="+controlMaster, "-o", "ControlPath="+link, m.Args[len(m.Args)-1])
	}
	for _, value := range []string{"no", "auto", "autoask", "yes", "ask"} {
		cmd := exec.Command("ssh", sshArgs(value)...)
		cmd.Stdin = strings.NewReader("hello")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "ssh -o ControlMaster=%s -W: %s", value, stderr.String())
		require.Equal(t, "hello", string(out))
		// sshd logs a login before ssh -W's data flows: give the reader
		// of its log time to catch up on a loaded machine.
		for deadline := time.Now().Add(3 * time.Second); logins(srv) == total && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		sshLogged := logins(srv) - total
		require.Contains(t, []int{0, 1}, sshLogged)
		total += sshLogged
		require.Equal(t, slices.Contains([]string{"yes", "ask"}, value), sshLogged == 1,
			"ssh with ControlMaster %s: %d logins; stderr:\n%s", value, sshLogged, stderr.String())

		d := connectTo(t, srv, sshdial.WithConfigLines("ControlPath "+link, "ControlMaster "+value))
		c, err := d.Dial("tcp", target.Addr().String())
		require.NoError(t, err)
		err = testutil.RoundTrip(c, "hello")
		c.Close()
		d.Close()
		require.NoError(t, err)
		viaMaster := c.LocalAddr().String() == link
		require.Equal(t, sshLogged == 0, viaMaster, "ControlMaster %s", value)
		total += sshLogged
		waitLogins(t, srv, total, "ControlMaster "+value+": Connect's logins differ from ssh's")
	}
}
