package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue #17, item 5: "UserKnownHostsFile none" is no file (nothing is read
// from or written to ./none), and ~ in -o UserKnownHostsFile is the home
// directory, so a file planted under ./~/ in the working directory is not
// trusted.
func TestUserKnownHostsFileNotInWorkingDirectory(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("GlobalKnownHostsFile none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-D0", "-F", cfg, "-i", f.key, "-p", f.port, f.srv.User + "@127.0.0.1"}

	// none with accept-new: there is no file to record the key in.
	code, _, stderr := runSync(t, 20*time.Second, append([]string{"-o", "UserKnownHostsFile=none", "-o", "StrictHostKeyChecking=accept-new"}, base...)...)
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Error("UserKnownHostsFile none wrote ./none")
	}
	if code != exitConnection {
		t.Errorf("UserKnownHostsFile none with accept-new: exit %d, want %d:\n%s", code, exitConnection, stderr)
	}

	// The server's real key planted in ./~/known_hosts_test is not taken.
	keys, err := os.ReadFile(f.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "~"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "~", "planted"), keys, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runSync(t, 20*time.Second, append([]string{"-o", "UserKnownHostsFile=~/planted", "-o", "StrictHostKeyChecking=yes"}, base...)...)
	if code != exitConnection || !strings.Contains(stderr, "host key is unknown") {
		t.Errorf("a known_hosts planted in ./~/: exit %d, want %d (unknown key):\n%s", code, exitConnection, stderr)
	}

	// ~ is $HOME, where the fixture's known_hosts is.
	startCLI(t, append([]string{"-o", "UserKnownHostsFile=~/" + filepath.Base(f.knownHosts), "-o", "StrictHostKeyChecking=yes"}, base...)...)
}

// A Match exec line works from the command (issue #18): it runs, through
// the shell, once.
func TestMatchExecRunsOnce(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	cfg := filepath.Join(dir, "config")
	text := "Match exec \"echo x >> " + count + "\"\n  UserKnownHostsFile " + f.knownHosts + "\n  StrictHostKeyChecking yes\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHELL", "/bin/sh")
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	startCLI(t, "-F", cfg, "-D0", "-i", f.key, "-p", f.port, f.srv.User+"@127.0.0.1")
	b, err := os.ReadFile(count)
	if err != nil || string(b) != "x\n" {
		t.Errorf("the Match exec command ran %q times (%v), want once", b, err)
	}
}
