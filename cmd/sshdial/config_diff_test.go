package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/sshconfig"
)

// gLines returns the values of each key in ssh -G style output.
func gLines(out string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			m[k] = append(m[k], v)
		}
	}
	return m
}

// TestDumpConfigCorpusAgainstSSH runs `sshdial -G` and `ssh -G` over the
// config corpus of internal/sshconfig and compares every key sshdial
// prints. Two deviations are documented and allowed for: %C hashes %j
// with ProxyJump (OpenSSH 9.6 and later), and Debian's ssh makes
// ServerAliveInterval 300 under BatchMode (a Debian patch).
func TestDumpConfigCorpusAgainstSSH(t *testing.T) {
	ssh := needSSH(t)
	const src = "../../internal/sshconfig/testdata"
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	incs, _ := filepath.Glob(src + "/include/*")
	for _, f := range incs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "conf.d", filepath.Base(f)), bytes.ReplaceAll(b, []byte("@DIR@"), []byte(dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "vpn-up"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(src + "/corpus/*.conf")
	sort.Strings(names)
	if len(names) < 30 {
		t.Fatalf("corpus of %d configs", len(names))
	}
	compared := 0
	defer func() {
		if compared < 60 {
			t.Errorf("only %d destinations compared", compared)
		}
	}()
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "@DIR@", dir)
		if strings.Contains(text, "Include rel/") || strings.Contains(text, "Include ~") {
			continue // Includes under the real home directory: internal/sshconfig covers them
		}
		cfg := filepath.Join(dir, filepath.Base(n))
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var dests, opts []string
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, "#! dests:"); ok {
				dests = append(dests, strings.Fields(v)...)
			}
			if v, ok := strings.CutPrefix(line, "#! opts:"); ok {
				opts = append(opts, strings.Fields(v)...)
			}
		}
		for _, d := range append(dests, "plain", "bob@plain", "ssh://carol@plain:2222") {
			args := append(append([]string{"-G", "-F", cfg}, opts...), d)
			code, out, stderr := runSync(t, 20*time.Second, args...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			theirs, serr := exec.CommandContext(ctx, ssh, args...).Output()
			cancel()
			name := filepath.Base(n) + " " + d
			switch {
			case (code == 0) != (serr == nil):
				t.Errorf("%s: sshdial -G exit %d (%s), ssh -G error %v", name, code, strings.TrimSpace(stderr), serr)
				continue
			case code != 0:
				continue
			}
			compared++
			ours, want := gLines(out), gLines(string(theirs))
			for _, k := range sshconfig.PrintedKeys {
				if k == "serveraliveinterval" && reflect.DeepEqual(ours[k], []string{"0"}) && reflect.DeepEqual(want[k], []string{"300"}) && ours["batchmode"][0] == "yes" {
					continue
				}
				if k == "controlpath" && len(ours["proxyjump"]) > 0 {
					continue
				}
				if !reflect.DeepEqual(ours[k], want[k]) {
					t.Errorf("%s: %s: sshdial -G %q, ssh -G %q", name, k, ours[k], want[k])
				}
			}
		}
	}
}

// needSSH skips without OpenSSH's client and sets HOME as ssh sees it.
func needSSH(t *testing.T) string {
	t.Helper()
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatal("no ssh, and SSHDIAL_REQUIRE_SSHD is set")
		}
		t.Skip("no ssh")
	}
	me, err := osuser.Current()
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("HOME", me.HomeDir) // ssh takes ~ from the passwd entry; sshdial from $HOME
	t.Setenv("SHELL", "/bin/sh")
	return ssh
}
