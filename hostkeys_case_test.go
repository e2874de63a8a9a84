package sshdial

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
	"golang.org/x/crypto/ssh"
)

// ssh(1) lowercases host names and HostKeyAlias, and known_hosts patterns,
// in ASCII only (tolower in the C locale): a name with a letter outside
// ASCII is the same name to it only in the same case. With such an alias,
// known_hosts holding another key under that very alias is a changed key,
// which StrictHostKeyChecking no must refuse too; lowercasing the alias
// with Unicode rules (ÄBC -> äbc) made it an unknown key, which "no"
// accepted. Conversely the Kelvin sign K (U+212A) is no "k" to ssh.
func TestHostKeyAliasNonASCIICase(t *testing.T) {
	srv := opensshd.Start(t)
	wrong := hkOtherKey(t)
	wrongKey := string(ssh.MarshalAuthorizedKey(wrong))
	rightKey := string(ssh.MarshalAuthorizedKey(srv.HostKey))

	// Another key under the alias itself: changed, for OpenSSH and here.
	for _, alias := range []string{"ÄBC", "ÄBC.Example"} {
		line := alias + " " + wrongKey
		kh := hkWrite(t, "known_hosts", []byte(line))
		if err, stderr := hkOpenSSHAlias(t, srv, alias, kh); err == nil || !strings.Contains(stderr, "HOST IDENTIFICATION HAS CHANGED") {
			t.Fatalf("OpenSSH with alias %q: %v, %q; want a changed key", alias, err, stderr)
		}
		for _, strict := range []string{"yes", "accept-new", "no"} {
			err := hkConnectAlias(t, srv, alias, kh, strict)
			if !errors.Is(err, ErrHostKeyChanged) {
				t.Errorf("alias %q, StrictHostKeyChecking %s: %v; want %v", alias, strict, err, ErrHostKeyChanged)
			}
			if data, _ := os.ReadFile(kh); string(data) != line {
				t.Errorf("alias %q, StrictHostKeyChecking %s: known_hosts was written:\n%s", alias, strict, data)
			}
		}
	}

	// The right key under the alias: accepted, as by OpenSSH.
	kh := hkWrite(t, "known_hosts", []byte("ÄBC "+rightKey))
	if err, stderr := hkOpenSSHAlias(t, srv, "ÄBC", kh); err != nil {
		t.Fatalf("OpenSSH: %v\n%s", err, stderr)
	}
	if err := hkConnectAlias(t, srv, "ÄBC", kh, "yes"); err != nil {
		t.Errorf("alias ÄBC, the right key: %v", err)
	}

	// Only ASCII letters fold: äbc is not ÄBC, nor the Kelvin sign k.
	for _, tc := range []struct{ alias, pattern string }{{"äbc", "ÄBC"}, {"\u212Aey", "key"}} {
		kh := hkWrite(t, "known_hosts", []byte(tc.pattern+" "+rightKey))
		if err, stderr := hkOpenSSHAlias(t, srv, tc.alias, kh); err == nil || !strings.Contains(stderr, "No ED25519 host key is known") {
			t.Fatalf("OpenSSH with alias %q and a line for %q: %v, %q; want an unknown key", tc.alias, tc.pattern, err, stderr)
		}
		if err := hkConnectAlias(t, srv, tc.alias, kh, "yes"); !errors.Is(err, ErrHostKeyUnknown) {
			t.Errorf("alias %q, a line for %q: %v; want %v", tc.alias, tc.pattern, err, ErrHostKeyUnknown)
		}
	}
}

// HostName and HostKeyAlias from the config are lowercased as ssh -G
// prints them: in ASCII only.
func TestHostNameCaseAgainstOpenSSH(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh client")
	}
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "config")
	text := "Host x\n  HostName ÄBC.Example\n  HostKeyAlias ÖKEY.\u212Aelvin.Example\nHost y\n  HostName \u212AEY.Example\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{"x", "y", "ÜBER.Example"} {
		cmd := exec.Command(sshPath, "-G", "-F", cfg, dest)
		cmd.Env = append(os.Environ(), "HOME="+tmp)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ssh -G %s: %v", dest, err)
		}
		want := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && (k == "hostname" || k == "hostkeyalias") {
				want[k] = v
			}
		}
		h, err := resolveHop(dest, cfg, tmp, "me")
		if err != nil {
			t.Fatal(err)
		}
		if h.HostName != want["hostname"] || h.HostKeyAlias != want["hostkeyalias"] {
			t.Errorf("%s: HostName %q, HostKeyAlias %q; ssh -G says %q, %q", dest, h.HostName, h.HostKeyAlias, want["hostname"], want["hostkeyalias"])
		}
	}
}
