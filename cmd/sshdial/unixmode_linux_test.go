package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// setUmask sets the process umask for the test and restores it after.
func setUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func requireSocketMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, want srw------- (OpenSSH's StreamLocalBindMask 0177)", path, fi.Mode())
	}
}

// listenUnixPrivate makes the socket 0600 whatever the umask: wider ones
// (002, 0) and one that takes owner bits away (0277).
func TestListenUnixPrivateMode(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	for i, mask := range []int{0o002, 0, 0o277} {
		t.Run(os.FileMode(mask).String(), func(t *testing.T) {
			setUmask(t, mask)
			path := filepath.Join(dir, string(rune('a'+i))+".sock")
			l, err := listenUnixPrivate(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			requireSocketMode(t, path)
			if _, err := listenUnixPrivate(path); err == nil {
				t.Fatal("a second listen on the same path succeeded")
			}
		})
	}
}

// The socket is private from its bind on, not only after a chmod: no one
// else can connect in between.
func TestPrivateFromBind(t *testing.T) {
	setUmask(t, 0o002)
	path := filepath.Join(testutil.ShortTempDir(t), "s")
	l, err := privateUnix.Listen(context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	requireSocketMode(t, path)
}

// listenUnixUmask, for the BSDs and macOS, also makes the socket 0600, and
// gives the umask back.
func TestListenUnixUmask(t *testing.T) {
	setUmask(t, 0o002)
	path := filepath.Join(testutil.ShortTempDir(t), "s")
	l, err := listenUnixUmask(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	requireSocketMode(t, path)
	if mask := syscall.Umask(0o002); mask != 0o002 {
		t.Fatalf("umask %#o after listenUnixUmask, want 002 back", mask)
	}
}

// `sshdial -L /path:host:port` with umask 002 makes a socket that only its
// user can connect to, as `ssh -L` does, and it forwards.
func TestLocalUnixSocketIsPrivate(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	setUmask(t, 0o002)
	sock := filepath.Join(testutil.ShortTempDir(t), "l.sock")
	startCLI(t, f.args("-L", sock+":"+echo.Addr().String())...)
	requireSocketMode(t, sock)
	c, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := testutil.RoundTrip(c, "through a private socket"); err != nil {
		t.Fatal(err)
	}
}
