package main

import (
	"context"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// As in ssh, the first -o of a key wins and a later one is ignored (still
// checked): `sshdial -o StrictHostKeyChecking=yes "$@"` in a wrapper keeps
// checking host keys whatever "$@" says. ssh -G is the oracle where it is
// installed. IdentityFile adds up, in ssh too.
func TestFirstOptionWins(t *testing.T) {
	for _, tc := range []struct{ key, first, later, sshKey string }{
		{"StrictHostKeyChecking", "yes", "no", "stricthostkeychecking"},
		{"StrictHostKeyChecking", "no", "yes", "stricthostkeychecking"},
		{"UserKnownHostsFile", "/first", "/later", "userknownhostsfile"},
		{"ServerAliveInterval", "5", "9", "serveraliveinterval"},
		{"ServerAliveCountMax", "2", "7", "serveralivecountmax"},
		{"ConnectTimeout", "5", "9", "connecttimeout"},
		{"User", "first", "later", "user"},
		{"Port", "2201", "2202", "port"},
		{"ProxyJump", "first.example", "later.example", "proxyjump"},
		{"ProxyCommand", "nc first 22", "nc later 22", "proxycommand"},
		{"IdentityAgent", "/first.sock", "/later.sock", "identityagent"},
		{"BatchMode", "yes", "no", "batchmode"},
		{"GatewayPorts", "yes", "no", "gatewayports"},
		{"ExitOnForwardFailure", "no", "yes", "exitonforwardfailure"},
	} {
		first := []string{"-o", tc.key + "=" + tc.first}
		both := append(append([]string(nil), first...), "-o", tc.key+"="+tc.later)
		if got, want := gLine(t, both, tc.sshKey), gLine(t, first, tc.sshKey); got != want {
			t.Errorf("sshdial -G %v: %q, want as %v alone: %q", both, got, first, want)
		}
		if out, err := exec.Command("ssh", append(append([]string{"-G", "-F", "/dev/null"}, both...), "h")...).Output(); err == nil {
			for _, line := range strings.Split(string(out), "\n") {
				if k, v, _ := strings.Cut(line, " "); k == tc.sshKey && strings.Contains(v, "later") {
					t.Errorf("ssh -G %v says %q: the oracle disagrees with this test", both, line)
				}
			}
		}
	}
	// IdentityFile adds up.
	var ids []string
	for _, line := range strings.Split(gOutput(t, []string{"-o", "IdentityFile=/a", "-o", "IdentityFile=/b"}), "\n") {
		if v, ok := strings.CutPrefix(line, "identityfile "); ok {
			ids = append(ids, v)
		}
	}
	if !reflect.DeepEqual(ids, []string{"/a", "/b"}) {
		t.Errorf("two -o IdentityFile: %q; want both", ids)
	}
}

// gOutput is what `sshdial -G -F /dev/null args... h` prints.
func gOutput(t *testing.T, args []string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(context.Background(), append(append([]string{"-G", "-F", "/dev/null"}, args...), "h"), &stdout, &stderr); code != 0 {
		t.Fatalf("sshdial -G %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

// gLine is the line of key in gOutput.
func gLine(t *testing.T, args []string, key string) string {
	t.Helper()
	for _, line := range strings.Split(gOutput(t, args), "\n") {
		if strings.HasPrefix(line, key+" ") {
			return line
		}
	}
	return ""
}

// TestLoginFlagsAgainstSSH: which of -l, -o User and the destination's
// user@ names the user, and of -p, -o Port and its port the port, is
// ssh's answer: the first given. ssh -G is the oracle.
func TestLoginFlagsAgainstSSH(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatal("no ssh, and SSHDIAL_REQUIRE_SSHD is set")
		}
		t.Skip("no ssh")
	}
	for _, args := range [][]string{
		{"-l", "lflag", "d@h"},
		{"-l", "lflag", "-l", "second", "h"},
		{"-o", "User=oline", "-l", "lflag", "d@h"},
		{"-l", "lflag", "-o", "User=oline", "h"},
		{"-o", "User=oline", "d@h"},
		{"d@h", "-l", "lflag"},
		{"h", "-l", "lflag"},
		{"-p", "2201", "ssh://d@h:2202"},
		{"-p", "2201", "-p", "2203", "h"},
		{"-o", "Port=2204", "-p", "2201", "h"},
		{"-p", "2201", "-o", "Port 2204", "h"},
		{"ssh://h:2202", "-p", "2201"},
		{"-l", "me@corp.example", "-p", "2201", "h"},
		{"d@h", "-o", "User=oline"},
		{"ssh://d@h:2202", "-o", "Port=2204", "-o", "User=oline", "-p", "2201"},
		{"-o", "User=oline", "d@h", "-l", "lflag"},
		{"ssh://u;fp=x@h:2", "-l", "lflag"},
		{"-o", `"User" oline`, "-l", "lflag", "h"},
		{"ssh://me%40corp@h", "-o", "User=oline"},
	} {
		out, err := exec.Command(sshPath, append([]string{"-G", "-F", "/dev/null"}, args...)...).Output()
		if err != nil {
			t.Fatalf("ssh -G %q: %v", args, err)
		}
		var stdout, stderr strings.Builder
		if code := run(context.Background(), append([]string{"-G", "-F", "/dev/null"}, args...), &stdout, &stderr); code != 0 {
			t.Fatalf("sshdial -G %q: exit %d: %s", args, code, stderr.String())
		}
		want, got := gLines(string(out)), gLines(stdout.String())
		for _, k := range []string{"user", "port", "hostname"} {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%q: %s %q, ssh -G says %q", args, k, got[k], want[k])
			}
		}
	}
}
