package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBreakLoginPrecedenceAgainstSSH compares what `sshdial -G` and
// `ssh -G` say the user, port and host name are over many orders of -l,
// -p, -o User, -o Port and the destination (flags after it included),
// with ssh:// URIs, IPv6 literals, users holding '@', and a config whose
// Host blocks and Match user/localuser/originalhost blocks set User, Port
// and HostName. ssh -G is the oracle: ssh takes the first of -l, -o User
// and the destination's user@ as it reads its arguments left to right
// (the destination included), and the same for the port.
func TestBreakLoginPrecedenceAgainstSSH(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatal("no ssh, and SSHDIAL_REQUIRE_SSHD is set")
		}
		t.Skip("no ssh")
	}
	local := "nobody"
	if out, err := exec.Command("id", "-un").Output(); err == nil {
		local = strings.TrimSpace(string(out))
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte(`Host alias
  HostName real.example
  User aliasuser
  Port 2222
Match user matched
  Port 3333
  HostName matchhost
Match localuser `+local+`
  ServerAliveInterval 7
Host *.v6
  User v6user
Match originalhost alias2 user lflag
  Port 4444
Host alias2
  User a2user
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Match exec sees %r and %p as ssh gives them.
	execCfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(execCfg, []byte("Match exec \"test %r = lflag\"\n  Port 5555\nMatch exec \"test %p = 2202\"\n  User portmatched\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type oracleCase struct {
		cfg  string
		args []string
	}
	var runs []oracleCase
	for _, args := range [][]string{
		{"-l", "lflag", "h"}, {"lflag@h"}, {"h", "-l", "lflag"}, {"d@h", "-o", "User=lflag"}, {"-o", "User=lflag", "d@h"},
		{"-p", "2202", "h"}, {"ssh://h:2202"}, {"ssh://h:2202", "-p", "1"}, {"-o", "Port=2202", "h"}, {"h", "-o", "Port=2202"},
		{"ssh://h:2203", "-o", "Port=2202"},
	} {
		runs = append(runs, oracleCase{execCfg, args})
	}
	for _, args := range [][]string{
		// The destination first: a later -o User or -o Port loses.
		{"d@h", "-o", "User=oline"},
		{"d@h", "-oUser=oline"},
		{"d@h", "-l", "x", "-o", "User=y"},
		{"ssh://d@h:2202", "-o", "Port=2204"},
		{"ssh://u@alias", "-o", "User=y"},
		{"ssh://alias:7", "-o", "Port=8"},
		{"ssh://alias:7", "-o", "Port=8", "-p", "9"},
		{"d@h", "-o", "User=y", "-o", "Port=5"},
		// The flags first.
		{"-o", "User=y", "ssh://u@alias"},
		{"-o", "Port=8", "ssh://alias:7"},
		{"-o", "User=y", "-o", "User=z", "h"},
		{"-l", "x", "-o", "User=y", "d@h"},
		{"h", "-o", "User=y", "-l", "x"},
		{"h", "-p", "2201", "-o", "Port=2204"},
		// Aliases and Match blocks.
		{"alias"}, {"-l", "x", "alias"}, {"alias", "-l", "x"}, {"-p", "1", "alias"},
		{"alias", "-p", "1"}, {"u@alias"}, {"alias", "-o", "Port=5"}, {"-o", "Port=5", "alias"},
		{"-l", "matched", "h"}, {"matched@h"}, {"h", "-l", "matched"}, {"-o", "User=matched", "h"},
		{"ssh://matched@h"}, {"ssh://matched@alias:99"}, {"matched@h", "-o", "User=other"},
		{"-l", "lflag", "alias2"}, {"alias2", "-l", "lflag"}, {"lflag@alias2"},
		{"-l", "lflag", "lflag2@alias2"}, {"lflag2@alias2", "-l", "lflag"},
		{"-l", "matched", "-o", "User=other", "h"}, {"h", "-l", "matched", "-l", "second"},
		// IPv6 literals, users with '@'.
		{"::1"}, {"u@::1"}, {"-l", "x", "u@::1"}, {"fe80::1"}, {"x.v6"}, {"-l", "q", "x.v6"},
		{"a@b@h"}, {"-l", "a@b", "h"}, {"ssh://a%40b@h"}, {"a@b@h", "-l", "c"},
	} {
		runs = append(runs, oracleCase{cfg, args})
	}
	for _, r := range runs {
		cfg, args := r.cfg, r.args
		out, err := exec.Command(sshPath, append([]string{"-G", "-F", cfg}, args...)...).Output()
		if err != nil {
			t.Fatalf("ssh -G %q: %v", args, err)
		}
		var stdout, stderr strings.Builder
		if code := run(context.Background(), append([]string{"-G", "-F", cfg}, args...), &stdout, &stderr); code != 0 {
			t.Errorf("sshdial -G %q: exit %d: %s", args, code, stderr.String())
			continue
		}
		want, got := gLines(string(out)), gLines(stdout.String())
		for _, k := range []string{"user", "port", "hostname", "serveraliveinterval"} {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%q: %s %q, ssh -G says %q", args, k, got[k], want[k])
			}
		}
	}
}

// TestBreakShadowedLineStillChecked: an -o User or -o Port that loses to
// an earlier one is still read, as ssh reads it: a bad one is a usage
// error.
func TestBreakShadowedLineStillChecked(t *testing.T) {
	for _, args := range [][]string{
		{"-G", "-F", "/dev/null", "d@h", "-o", "Port=notaport"},
		{"-G", "-F", "/dev/null", "-p", "22", "-o", "Port=0"},
		{"-G", "-F", "/dev/null", "d@h", "-o", "User"},
	} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("sshdial %q: exit %d, want %d (usage): %s", args, code, exitUsage, stderr.String())
		}
		if err := exec.Command("ssh", args...).Run(); err == nil {
			t.Errorf("ssh %q succeeds: the oracle disagrees with this test", args)
		}
	}
}
