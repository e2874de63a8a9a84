package main

import (
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
		want, err := parseArgs(append(first, "-D1", "h"))
		if err != nil {
			t.Fatalf("%v: %v", first, err)
		}
		got, err := parseArgs(append(both, "-D1", "h"))
		if err != nil {
			t.Fatalf("%v: %v", both, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: parsed as %+v, want as %v alone: %+v", both, got, first, want)
		}
		if _, err := parseArgs(append(append(first, "-o", tc.key+"=bad value%"), "-D1", "h")); err == nil && tc.key != "User" && tc.key != "ProxyCommand" && tc.key != "IdentityAgent" && tc.key != "UserKnownHostsFile" && tc.key != "ProxyJump" {
			t.Errorf("a later bad -o %s is not checked", tc.key)
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
	o, err := parseArgs([]string{"-o", "IdentityFile=/a", "-o", "IdentityFile=/b", "-D1", "h"})
	if err != nil || !reflect.DeepEqual(o.identities, []string{"/a", "/b"}) {
		t.Errorf("two -o IdentityFile: %v, %v; want both", o.identities, err)
	}
}
