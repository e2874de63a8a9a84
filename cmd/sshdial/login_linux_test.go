package main

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestLoginFlagsOnTerminal: -l names the user the server sees and the
// password prompt shows, as ssh's "user@host's password: ", with the
// destination typed without a user; -p names the port.
func TestLoginFlagsOnTerminal(t *testing.T) {
	users := make(chan string, 4)
	srv := sshtest.NewUnstartedServer()
	srv.Config.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no keys")
	}
	srv.Config.PasswordCallback = func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		users <- m.User()
		if string(pw) == "open-sesame" {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}
	srv.Start()
	t.Cleanup(srv.Close)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	kh := filepath.Join(home, "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr())

	term := onTerminal(t, nil, execLine(os.Args[0], "-N", "-D", "127.0.0.1:0", "-F", "none",
		"-o", "UserKnownHostsFile="+kh, "-o", "ConnectTimeout=20",
		"-l", "pwuser", "-p", port, "-l", "ignored", host))
	out, typing := term.out, term.in
	waitCount(t, out, "pwuser@"+host+"'s password: ", 1, 30*time.Second)
	io.WriteString(typing, "open-sesame\r")
	waitFor(t, out, "listen=", 30*time.Second)
	if got := <-users; got != "pwuser" {
		t.Fatalf("the server saw user %q, want pwuser", got)
	}
	if strings.Contains(out.String(), "open-sesame") {
		t.Fatal("the password was echoed or logged")
	}
}
