package sshdial_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/stretchr/testify/require"
)

// pamSSHD starts OpenSSH's sshd with UsePAM and the given sshd_config
// lines, whose PAM stack for "sshd" takes one answer, the code, through
// pam_exec: nothing on the system changes and no user is made. sshd runs
// in a mount namespace of its own where a test-local PAM file is mounted
// over /etc/pam.d/sshd (a wrapper named sshd, first in PATH, sets it up
// and execs the real one). It logs in the current user, so it needs root
// (also for the mount): without it, or without PAM's modules, the test is
// skipped, or fails when SSHDIAL_REQUIRE_SSHD is set.
func pamSSHD(t *testing.T, code string, config ...string) *opensshd.Server {
	t.Helper()
	skip := func(why string) {
		if os.Getenv(opensshd.RequireEnv) != "" {
			t.Fatalf("%s (%s is set)", why, opensshd.RequireEnv)
		}
		t.Skip(why)
	}
	bin := opensshd.Path()
	switch {
	case bin == "":
		skip("sshd not found: install openssh-server")
	case os.Geteuid() != 0:
		skip("sshd with PAM logging in the current user needs root (and a mount namespace)")
	}
	if _, err := os.Stat("/etc/pam.d/sshd"); err != nil {
		skip("no /etc/pam.d/sshd to mount the test's PAM stack over")
	}
	var pamExec string
	for _, dir := range []string{"/lib/x86_64-linux-gnu/security", "/lib/aarch64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security", "/usr/lib/aarch64-linux-gnu/security", "/lib/security", "/usr/lib/security", "/lib64/security", "/usr/lib64/security"} {
		if _, err := os.Stat(filepath.Join(dir, "pam_exec.so")); err == nil {
			pamExec = filepath.Join(dir, "pam_exec.so")
			break
		}
	}
	if pamExec == "" {
		skip("PAM's pam_exec.so not found (libpam-modules)")
	}
	dir, err := os.MkdirTemp("", "pam") // sshd (root) reads it
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	write := func(name, text string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(text), mode))
		return path
	}
	// pam_exec asks for the token (no echo) and gives it, NUL-terminated,
	// on the check's standard input.
	check := write("check", "#!/bin/sh\ntok=$(tr -d '\\000')\n[ \"$tok\" = '"+code+"' ]\n", 0o755)
	// pam_permit gives pam_setcred, which pam_exec ignores, a success.
	pam := write("pam", "auth required pam_exec.so expose_authtok quiet "+check+"\nauth required pam_permit.so\n"+
		"account required pam_permit.so\nsession required pam_permit.so\npassword required pam_deny.so\n", 0o644)
	wrapperDir := filepath.Join(dir, "bin")
	require.NoError(t, os.Mkdir(wrapperDir, 0o755))
	write("bin/sshd", fmt.Sprintf("#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind \"$0\" /etc/pam.d/sshd && exec %s \"$@\"' %s \"$@\"\n", bin, pam), 0o755)
	t.Setenv("PATH", wrapperDir+":"+os.Getenv("PATH"))
	if opensshd.Path() != filepath.Join(wrapperDir, "sshd") {
		t.Fatalf("the sshd wrapper is not first in PATH: %s", opensshd.Path())
	}
	return opensshd.StartWith(t, opensshd.Options{Config: append([]string{
		"UsePAM yes", "KbdInteractiveAuthentication yes", "PermitRootLogin yes"}, config...)})
}

// Keyboard-interactive through OpenSSH's sshd and PAM, as a bastion with
// a one-time code is set up: the key first, then the code
// (AuthenticationMethods publickey,keyboard-interactive); a wrong code is
// asked again; and PAM's question arrives without echo.
func TestKeyboardInteractiveOpenSSHPAM(t *testing.T) {
	srv := pamSSHD(t, "246810", "AuthenticationMethods publickey,keyboard-interactive")
	homeFor(t, srv)
	a := &answers{next: [][]string{{"111111"}, {"246810"}}}
	var logBuf lockedBuffer
	d, err := kbdConnect(t, fmt.Sprintf("%s@%s", srv.User, srv.Addr), sshdial.WithKeyboardInteractive(a.answer),
		sshdial.WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
	require.NoError(t, err, "sshd: %s", srv.Stderr())
	requireEchoThrough(t, d)
	calls := a.calls()
	require.Len(t, calls, 2, "asked again after the wrong code")
	require.Len(t, calls[0].Questions, 1)
	require.Equal(t, []bool{false}, calls[0].Echo)
	require.Equal(t, srv.User, calls[0].User)
	require.Contains(t, logBuf.String(), "auth=keyboard-interactive")

	// Without the code, the key alone does not log in.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = sshdial.Connect(ctx, fmt.Sprintf("%s@%s", srv.User, srv.Addr))
	require.ErrorIs(t, err, sshdial.ErrAuthFailed)
	require.True(t, strings.Contains(err.Error(), "accepted by the server"), "the key was accepted, then a code was needed: %v", err)
}

// A password through sshd's PasswordAuthentication and PAM: the password
// method, asked again after a wrong one (NumberOfPasswordPrompts).
func TestPasswordOpenSSHPAM(t *testing.T) {
	srv := pamSSHD(t, "correct-horse", "PasswordAuthentication yes", "AuthenticationMethods password")
	newHome(t).write(t, "known_hosts", keyscan(t, srv.Addr, "ed25519"))
	var tries []string
	pw := []string{"wrong-horse", "correct-horse"}
	d, err := kbdConnect(t, fmt.Sprintf("%s@%s", srv.User, srv.Addr), sshdial.WithPassword(func(context.Context) (string, error) {
		p := pw[len(tries)%len(pw)]
		tries = append(tries, p)
		return p, nil
	}))
	require.NoError(t, err, "sshd: %s", srv.Stderr())
	require.Equal(t, pw, tries)
	requireEchoThrough(t, d)
}
