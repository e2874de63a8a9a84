package sshdial

// The helpers of the host key tests (hostkeys*_test.go): they run OpenSSH's
// tools (ssh, ssh-keyscan, ssh-keygen) and sshd, and hostKeyCheck, against
// one server, so that each test can compare the two.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"golang.org/x/crypto/ssh"
)

// hkPort returns the server's port.
func hkPort(t *testing.T, srv *opensshd.Server) int {
	t.Helper()
	_, p, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// hkRun runs an OpenSSH tool and returns its standard output.
func hkRun(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// hkKeyscan runs ssh-keyscan against the server with the given extra
// arguments (e.g. -t ed25519, -H) and returns the known_hosts lines.
func hkKeyscan(t *testing.T, srv *opensshd.Server, args ...string) []byte {
	t.Helper()
	args = append(append([]string{"-p", strconv.Itoa(hkPort(t, srv))}, args...), "127.0.0.1")
	out := hkRun(t, "ssh-keyscan", args...)
	if len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("ssh-keyscan %v printed nothing", args)
	}
	return out
}

// hkWrite writes a file in a new temporary directory and returns its path.
func hkWrite(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hkKeygen runs ssh-keygen to make a key pair of type typ in a temporary
// directory and returns the private key's path (the public key is path.pub).
func hkKeygen(t *testing.T, typ string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), typ)
	args := []string{"-q", "-t", typ, "-N", "", "-f", p}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	hkRun(t, "ssh-keygen", args...)
	return p
}

// hkPublicKey reads an OpenSSH public key file.
func hkPublicKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// hkTwoKeyServer starts sshd with its ed25519 host key and an RSA one.
func hkTwoKeyServer(t *testing.T) *opensshd.Server {
	t.Helper()
	return opensshd.Start(t, "HostKey "+hkKeygen(t, "rsa"))
}

// hkDial logs in to the server with the callback and algorithms that
// hostKeyCheck returned, and reports the host key the server presented.
func hkDial(t *testing.T, srv *opensshd.Server, cb ssh.HostKeyCallback, algos []string) (ssh.PublicKey, error) {
	t.Helper()
	var presented ssh.PublicKey
	config := &ssh.ClientConfig{
		User: srv.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(srv.ClientKey)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			presented = key
			return cb(hostname, remote, key)
		},
		HostKeyAlgorithms: algos,
		Timeout:           10 * time.Second,
	}
	c, err := ssh.Dial("tcp", srv.Addr, config)
	if err != nil {
		return presented, err
	}
	return presented, c.Close()
}

// hkCheckDial runs hostKeyCheck for the server with the files and dials.
func hkCheckDial(t *testing.T, srv *opensshd.Server, files []string, writeFile, strict string) (ssh.PublicKey, error) {
	t.Helper()
	return hkCheckDialAs(t, srv, "127.0.0.1", files, writeFile, strict)
}

// hkCheckDialAs is hkCheckDial for the server reached by the name host.
func hkCheckDialAs(t *testing.T, srv *opensshd.Server, host string, files []string, writeFile, strict string) (ssh.PublicKey, error) {
	t.Helper()
	cb, algos, err := hostKeyCheck(nil, host, hkPort(t, srv), files, writeFile, strict, nil)
	if err != nil {
		t.Fatalf("hostKeyCheck: %v", err)
	}
	return hkDial(t, srv, cb, algos)
}

// hkOpenSSH runs OpenSSH's client against the server with known_hosts file
// knownHosts and strict host key checking, and returns its error and
// standard error.
func hkOpenSSH(t *testing.T, srv *opensshd.Server, knownHosts string) (error, string) {
	t.Helper()
	return hkOpenSSHAs(t, srv, "127.0.0.1", knownHosts)
}

// hkOpenSSHAs is hkOpenSSH for the server reached by the name host.
func hkOpenSSHAs(t *testing.T, srv *opensshd.Server, host, knownHosts string) (error, string) {
	t.Helper()
	return hkRunOpenSSH(t, srv, host, knownHosts)
}

// hkOpenSSHAlias is hkOpenSSH with HostKeyAlias alias.
func hkOpenSSHAlias(t *testing.T, srv *opensshd.Server, alias, knownHosts string) (error, string) {
	t.Helper()
	return hkRunOpenSSH(t, srv, "127.0.0.1", knownHosts, "-o", "HostKeyAlias="+alias)
}

// hkRunOpenSSH runs `ssh ... true` against the server reached by the name
// host, logging in with srv's client key, with known_hosts file knownHosts,
// StrictHostKeyChecking yes and the extra options, and returns its error
// and standard error.
func hkRunOpenSSH(t *testing.T, srv *opensshd.Server, host, knownHosts string, extra ...string) (error, string) {
	t.Helper()
	home := t.TempDir()
	keyFile := hkClientKeyFile(t, srv, home)
	args := []string{"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "IdentitiesOnly=yes"}
	args = append(args, extra...)
	args = append(args, "-p", strconv.Itoa(hkPort(t, srv)), "-i", keyFile, srv.User+"@"+host, "true")
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return err, stderr.String()
}

// hkClientKeyFile writes srv's client private key to dir/id and returns
// its path.
func hkClientKeyFile(t *testing.T, srv *opensshd.Server, dir string) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(srv.ClientPrivateKey, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

// hkOtherKey returns a new ed25519 public key: one no server has, for a
// known_hosts line that must read as a changed key.
func hkOtherKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}

func hkHostKeyError(t *testing.T, err error, sentinel error) *HostKeyError {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v, want %v", err, sentinel)
	}
	var hkErr *HostKeyError
	if !errors.As(err, &hkErr) {
		t.Fatalf("error %T %v is no *HostKeyError", err, err)
	}
	return hkErr
}

func hkContains(t *testing.T, msg string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q\nlacks %q", msg, w)
		}
	}
}

// hkCertServer starts sshd with an ed25519 host key certified by a new CA
// for the principal; it comes before the default host key, so sshd offers
// it for ssh-ed25519.
func hkCertServer(t *testing.T, principal string) (srv *opensshd.Server, hostKey, ca ssh.PublicKey) {
	t.Helper()
	caKey := hkKeygen(t, "ed25519")
	key := hkKeygen(t, "ed25519")
	hkRun(t, "ssh-keygen", "-q", "-s", caKey, "-I", "id", "-h", "-n", principal, key+".pub")
	srv = opensshd.Start(t, "HostKey "+key, "HostCertificate "+key+"-cert.pub")
	return srv, hkPublicKey(t, key+".pub"), hkPublicKey(t, caKey+".pub")
}

// hkConnectAlias runs Connect against srv through a config file that gives
// it HostKeyAlias alias, with known_hosts kh and the strict mode.
func hkConnectAlias(t *testing.T, srv *opensshd.Server, alias, kh, strict string) error {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("SSH_AUTH_SOCK", "")
	keyFile := hkClientKeyFile(t, srv, dir)
	config := filepath.Join(dir, "config")
	text := fmt.Sprintf("Host target\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  HostKeyAlias %s\n  IdentityFile %s\n  IdentitiesOnly yes\n",
		hkPort(t, srv), srv.User, alias, keyFile)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := Connect(ctx, "target", WithConfigFile(config), WithKnownHostsFile(kh), WithStrictHostKeyChecking(strict))
	if err == nil {
		d.Close()
	}
	return err
}
