package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"golang.org/x/crypto/ssh"
)

// With -o StrictHostKeyChecking=no, the command still refuses a changed
// host key, a @revoked one and a certificate of a trusted authority that
// does not name the host; it starts no forward and writes nothing to
// known_hosts (#17 item 3).
func TestStrictNoRefusesBadHostKeys(t *testing.T) {
	f := newFixture(t)
	run := func(t *testing.T, f *fixture, knownHosts string) {
		t.Helper()
		if err := os.WriteFile(f.knownHosts, []byte(knownHosts), 0o600); err != nil {
			t.Fatal(err)
		}
		args := f.args("-D", "0")
		for i, a := range args {
			if a == "StrictHostKeyChecking=yes" {
				args[i] = "StrictHostKeyChecking=no"
			}
		}
		code, _, stderr := runSync(t, 60*time.Second, args...)
		if code == 0 {
			t.Errorf("exit 0 with StrictHostKeyChecking=no:\n%s", stderr)
		}
		if !strings.Contains(stderr, "host key has changed") {
			t.Errorf("stderr does not say the host key has changed:\n%s", stderr)
		}
		if data, _ := os.ReadFile(f.knownHosts); string(data) != knownHosts {
			t.Errorf("known_hosts was written:\n%s", data)
		}
	}
	hostPort := "[127.0.0.1]:" + f.port

	t.Run("changed", func(t *testing.T) {
		_, wrong, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.NewSignerFromKey(wrong)
		if err != nil {
			t.Fatal(err)
		}
		run(t, f, hostPort+" "+string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	})
	t.Run("revoked", func(t *testing.T) {
		run(t, f, "@revoked * "+string(ssh.MarshalAuthorizedKey(f.srv.HostKey)))
	})
	t.Run("certificate for another name", func(t *testing.T) {
		dir := t.TempDir()
		ca, key := filepath.Join(dir, "ca"), filepath.Join(dir, "host")
		for _, k := range []string{ca, key} {
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
		}
		if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "id", "-h", "-n", "other.example", key+".pub").CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -s: %v %s", err, out)
		}
		cf := *f
		cf.srv = opensshd.Start(t, "HostKey "+key, "HostCertificate "+key+"-cert.pub")
		cf.port = cf.srv.Addr[strings.LastIndexByte(cf.srv.Addr, ':')+1:]
		// The fixture's client key logs in to this sshd too.
		authorized, err := os.ReadFile(filepath.Join(f.srv.Dir, "authorized_keys"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cf.srv.Dir, "authorized_keys"), authorized, 0o600); err != nil {
			t.Fatal(err)
		}
		caPub, err := os.ReadFile(ca + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		run(t, &cf, "@cert-authority [127.0.0.1]:"+cf.port+" "+string(bytes.TrimSpace(caPub))+"\n")
	})
}
