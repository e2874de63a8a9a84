package sshdial

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// x/crypto's knownhosts alone fails with the file OpenSSH records by
// default (ed25519 only) against a server that also has RSA; with the
// algorithms of hostKeyCheck it connects, and so does OpenSSH.
func TestHostKeyEd25519KnownHostsTwoKeyServer(t *testing.T) {
	srv := hkTwoKeyServer(t)
	kh := hkWrite(t, "known_hosts", hkKeyscan(t, srv, "-t", "ed25519"))

	// The setup matters: x/crypto alone negotiates RSA and reports a mismatch.
	plain, err := xknownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hkDial(t, srv, plain, nil); err == nil || !strings.Contains(err.Error(), "knownhosts: key mismatch") {
		t.Fatalf("x/crypto knownhosts alone: %v, want a key mismatch (does the server have its RSA key?)", err)
	}

	cb, algos, err := hostKeyCheck(nil, "127.0.0.1", hkPort(t, srv), []string{kh}, "", "yes", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(algos) == 0 || algos[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms %v, want ssh-ed25519 first", algos)
	}
	key, err := hkDial(t, srv, cb, algos)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if !bytes.Equal(key.Marshal(), srv.HostKey.Marshal()) {
		t.Errorf("server presented %s, want its ed25519 key", key.Type())
	}
	if err, stderr := hkOpenSSH(t, srv, kh); err != nil {
		t.Errorf("OpenSSH disagrees: %v\n%s", err, stderr)
	}
}

// A known_hosts holding only the RSA key works with the two-key server and
// with one that offers only RSA.
func TestHostKeyRSAKnownHosts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"two keys", nil},
		{"rsa only", []string{"HostKeyAlgorithms rsa-sha2-512,rsa-sha2-256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rsaKey := hkKeygen(t, "rsa")
			srv := opensshd.Start(t, append([]string{"HostKey " + rsaKey}, tc.extra...)...)
			kh := hkWrite(t, "known_hosts", hkKeyscan(t, srv, "-t", "rsa"))
			key, err := hkCheckDial(t, srv, []string{kh}, "", "yes")
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if want := hkPublicKey(t, rsaKey+".pub"); !bytes.Equal(key.Marshal(), want.Marshal()) {
				t.Errorf("server presented %s, want its RSA key", key.Type())
			}
			if err, stderr := hkOpenSSH(t, srv, kh); err != nil {
				t.Errorf("OpenSSH disagrees: %v\n%s", err, stderr)
			}
			if tc.extra != nil {
				// Against the RSA-only server, the ed25519 entry of another
				// host key set is no help: a changed key, not a hang or a
				// negotiation error.
				other := hkWrite(t, "known_hosts", []byte(fmt.Sprintf("[127.0.0.1]:%d %s", hkPort(t, srv), ssh.MarshalAuthorizedKey(srv.HostKey))))
				_, err := hkCheckDial(t, srv, []string{other}, "", "yes")
				hkHostKeyError(t, err, ErrHostKeyChanged)
			}
		})
	}
}

func TestHostKeyUnknown(t *testing.T) {
	srv := hkTwoKeyServer(t)
	port := hkPort(t, srv)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")     // missing: no error, nothing known
	other := hkWrite(t, "known_hosts2", []byte( // a key for another host
		"example.com "+string(ssh.MarshalAuthorizedKey(srv.HostKey))))
	files := []string{kh, other}

	_, err := hkCheckDial(t, srv, files, "", "yes")
	hkErr := hkHostKeyError(t, err, ErrHostKeyUnknown)
	host := fmt.Sprintf("[127.0.0.1]:%d", port)
	if hkErr.Host != host || hkErr.KeyType != ssh.KeyAlgoED25519 || hkErr.Fingerprint != ssh.FingerprintSHA256(srv.HostKey) {
		t.Errorf("error fields %+v, want host %s, the server's ed25519 key %s", hkErr, host, ssh.FingerprintSHA256(srv.HostKey))
	}
	if len(hkErr.Files) != 2 || hkErr.Files[0] != kh || hkErr.Files[1] != other {
		t.Errorf("Files %v, want %v", hkErr.Files, files)
	}
	scan := fmt.Sprintf("ssh-keyscan -p %d -t ed25519 127.0.0.1 >> %s", port, kh)
	hkContains(t, err.Error(), host, "ssh-ed25519", ssh.FingerprintSHA256(srv.HostKey), kh, other, scan, "StrictHostKeyChecking accept-new")
	t.Logf("unknown: %v", err)

	if err, _ := hkOpenSSH(t, srv, kh); err == nil {
		t.Error("OpenSSH connects to the unknown host")
	}

	// "ask" refuses as well (nobody to ask), and the advice works.
	_, err = hkCheckDial(t, srv, files, "", "ask")
	hkHostKeyError(t, err, ErrHostKeyUnknown)
	hkRun(t, "sh", "-c", scan)
	if _, err := hkCheckDial(t, srv, files, "", "yes"); err != nil {
		t.Errorf("after %s: %v", scan, err)
	}
	if err, stderr := hkOpenSSH(t, srv, kh); err != nil {
		t.Errorf("OpenSSH disagrees after %s: %v\n%s", scan, err, stderr)
	}
}

func TestHostKeyChanged(t *testing.T) {
	srv := hkTwoKeyServer(t)
	port := hkPort(t, srv)
	host := fmt.Sprintf("[127.0.0.1]:%d", port)
	wrongKey := hkOtherKey(t)
	kh := hkWrite(t, "known_hosts", []byte(
		"# a comment\n"+
			"example.com "+string(ssh.MarshalAuthorizedKey(srv.HostKey))+
			host+" "+string(ssh.MarshalAuthorizedKey(wrongKey))))

	for _, strict := range []string{"yes", "accept-new"} {
		_, err := hkCheckDial(t, srv, []string{kh}, kh, strict)
		hkErr := hkHostKeyError(t, err, ErrHostKeyChanged)
		if hkErr.Host != host || hkErr.Fingerprint != ssh.FingerprintSHA256(srv.HostKey) {
			t.Errorf("%s: error fields %+v", strict, hkErr)
		}
		remove := fmt.Sprintf("ssh-keygen -R '%s' -f %s", host, kh)
		hkContains(t, err.Error(), kh+":3", ssh.FingerprintSHA256(wrongKey), remove)
		if strict == "yes" {
			t.Logf("changed: %v", err)
		}
	}
	data, _ := os.ReadFile(kh)
	if strings.Count(string(data), "\n") != 3 {
		t.Errorf("accept-new wrote to known_hosts with a changed key:\n%s", data)
	}
	if err, _ := hkOpenSSH(t, srv, kh); err == nil {
		t.Error("OpenSSH connects with a changed key")
	}
	// OpenSSH with "no" goes on through a changed key with forwarding
	// disabled; forwarding is all sshdial does, so it refuses.
	_, err := hkCheckDial(t, srv, []string{kh}, kh, "no")
	hkHostKeyError(t, err, ErrHostKeyChanged)
	if data, _ := os.ReadFile(kh); strings.Count(string(data), "\n") != 3 {
		t.Errorf("StrictHostKeyChecking no wrote to known_hosts with a changed key:\n%s", data)
	}

	// The advice works: after ssh-keygen -R the key is unknown.
	hkRun(t, "ssh-keygen", "-q", "-R", host, "-f", kh)
	_, err = hkCheckDial(t, srv, []string{kh}, "", "yes")
	hkHostKeyError(t, err, ErrHostKeyUnknown)
}

func TestHostKeyRevoked(t *testing.T) {
	srv := hkTwoKeyServer(t)
	line := hkKeyscan(t, srv, "-t", "ed25519")
	kh := hkWrite(t, "known_hosts", append(line, "@revoked * "+string(ssh.MarshalAuthorizedKey(srv.HostKey))...))
	for _, strict := range []string{"yes", "accept-new", "no"} {
		_, err := hkCheckDial(t, srv, []string{kh}, kh, strict)
		hkErr := hkHostKeyError(t, err, ErrHostKeyChanged)
		if hkErr.Fingerprint != ssh.FingerprintSHA256(srv.HostKey) {
			t.Errorf("fingerprint %s", hkErr.Fingerprint)
		}
		hkContains(t, err.Error(), "@revoked", kh+":2")
		if strict == "yes" {
			t.Logf("revoked: %v", err)
		}
	}
	if err, _ := hkOpenSSH(t, srv, kh); err == nil {
		t.Error("OpenSSH connects with a revoked key")
	}
}

func TestHostKeyCertAuthority(t *testing.T) {
	srv, hostKey, ca := hkCertServer(t, "127.0.0.1")
	port := hkPort(t, srv)
	caLine := fmt.Sprintf("@cert-authority [127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(ca))
	kh := hkWrite(t, "known_hosts", []byte(caLine))

	cb, algos, err := hostKeyCheck(nil, "127.0.0.1", port, []string{kh}, "", "yes", nil)
	if err != nil {
		t.Fatal(err)
	}
	if algos[0] != ssh.CertAlgoED25519v01 {
		t.Errorf("algorithms %v, want the ed25519 certificate first", algos)
	}
	key, err := hkDial(t, srv, cb, algos)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if cert, ok := key.(*ssh.Certificate); !ok || !bytes.Equal(cert.Key.Marshal(), hostKey.Marshal()) {
		t.Errorf("server presented %s, want the certificate of its key", key.Type())
	}
	if err, stderr := hkOpenSSH(t, srv, kh); err != nil {
		t.Errorf("OpenSSH disagrees: %v\n%s", err, stderr)
	}

	// A revoked authority.
	revoked := hkWrite(t, "known_hosts", []byte(caLine+"@revoked * "+string(ssh.MarshalAuthorizedKey(ca))))
	_, err = hkCheckDial(t, srv, []string{revoked}, "", "yes")
	hkContains(t, hkHostKeyError(t, err, ErrHostKeyChanged).Error(), "certificate authority", "@revoked", revoked+":2")

	// An authority for another host: the certified key is checked as a
	// plain key, so the host is unknown, and accept-new records the key.
	elsewhere := hkWrite(t, "known_hosts", []byte("@cert-authority example.com "+string(ssh.MarshalAuthorizedKey(ca))))
	_, err = hkCheckDial(t, srv, []string{elsewhere}, "", "yes")
	hkErr := hkHostKeyError(t, err, ErrHostKeyUnknown)
	if hkErr.KeyType != ssh.KeyAlgoED25519 || hkErr.Fingerprint != ssh.FingerprintSHA256(hostKey) {
		t.Errorf("unknown key %s %s, want the certified ed25519 key %s", hkErr.KeyType, hkErr.Fingerprint, ssh.FingerprintSHA256(hostKey))
	}
	if _, err := hkCheckDial(t, srv, []string{elsewhere}, elsewhere, "accept-new"); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	if _, err := hkCheckDial(t, srv, []string{elsewhere}, "", "yes"); err != nil {
		t.Errorf("after accept-new: %v", err)
	}
}

// A certificate from a trusted authority that does not name the host is
// refused, as OpenSSH does.
func TestHostKeyCertAuthorityWrongPrincipal(t *testing.T) {
	srv, _, ca := hkCertServer(t, "other.example")
	kh := hkWrite(t, "known_hosts", []byte(fmt.Sprintf("@cert-authority [127.0.0.1]:%d %s", hkPort(t, srv), ssh.MarshalAuthorizedKey(ca))))
	_, err := hkCheckDial(t, srv, []string{kh}, "", "yes")
	hkContains(t, hkHostKeyError(t, err, ErrHostKeyChanged).Error(), "not valid for 127.0.0.1", kh+":1")
	t.Logf("wrong principal: %v", err)
	if err, _ := hkOpenSSH(t, srv, kh); err == nil {
		t.Error("OpenSSH accepts the certificate")
	}
}

func TestHostKeyHashedKnownHosts(t *testing.T) {
	srv := hkTwoKeyServer(t)
	scan := hkKeyscan(t, srv, "-H", "-t", "ed25519")
	if !bytes.HasPrefix(scan, []byte("|1|")) {
		t.Fatalf("ssh-keyscan -H wrote %q, want a hashed name", scan)
	}
	kh := hkWrite(t, "known_hosts", scan)
	if _, err := hkCheckDial(t, srv, []string{kh}, "", "yes"); err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err, stderr := hkOpenSSH(t, srv, kh); err != nil {
		t.Errorf("OpenSSH disagrees: %v\n%s", err, stderr)
	}
}

func TestHostKeyAcceptNew(t *testing.T) {
	srv := hkTwoKeyServer(t)
	dir := filepath.Join(t.TempDir(), "home", ".ssh")
	kh := filepath.Join(dir, "known_hosts")

	cb, algos, err := hostKeyCheck(nil, "127.0.0.1", hkPort(t, srv), []string{kh}, kh, "accept-new", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the same callback twice writes once
		if _, err := hkDial(t, srv, cb, algos); err != nil {
			t.Fatalf("accept-new dial %d: %v", i, err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(kh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file: %v %v, want mode 0600", fi.Mode(), err)
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	// The line is the one ssh-keyscan prints.
	if want := hkKeyscan(t, srv, "-t", "ed25519"); !bytes.Equal(data, want) {
		t.Errorf("known_hosts:\n%s\nwant:\n%s", data, want)
	}
	if _, err := hkCheckDial(t, srv, []string{kh}, "", "yes"); err != nil {
		t.Errorf("after accept-new: %v", err)
	}
	if err, stderr := hkOpenSSH(t, srv, kh); err != nil {
		t.Errorf("OpenSSH disagrees after accept-new: %v\n%s", err, stderr)
	}
}

// accept-new reads the file again before it appends: a key another
// connection recorded meanwhile is not written twice, and another key for
// the host recorded meanwhile is a changed key. A write file that is not
// among the files read is written once per callback.
func TestHostKeyAcceptNewRereads(t *testing.T) {
	srv := hkTwoKeyServer(t)
	port := hkPort(t, srv)
	line := hkKeyscan(t, srv, "-t", "ed25519")

	kh := filepath.Join(t.TempDir(), "known_hosts")
	cb, algos, err := hostKeyCheck(nil, "127.0.0.1", port, []string{kh}, kh, "accept-new", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kh, line, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := hkDial(t, srv, cb, algos); err != nil {
		t.Fatalf("dial: %v", err)
	}
	if data, _ := os.ReadFile(kh); !bytes.Equal(data, line) {
		t.Errorf("known_hosts:\n%s\nwant only:\n%s", data, line)
	}

	wrongKey := hkOtherKey(t)
	kh = filepath.Join(t.TempDir(), "known_hosts")
	cb, algos, err = hostKeyCheck(nil, "127.0.0.1", port, []string{kh}, kh, "accept-new", nil)
	if err != nil {
		t.Fatal(err)
	}
	other := fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(wrongKey))
	if err := os.WriteFile(kh, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = hkDial(t, srv, cb, algos)
	hkContains(t, hkHostKeyError(t, err, ErrHostKeyChanged).Error(), kh+":1")
	if data, _ := os.ReadFile(kh); string(data) != other {
		t.Errorf("known_hosts:\n%s\nwant only:\n%s", data, other)
	}

	write := filepath.Join(t.TempDir(), "known_hosts")
	cb, algos, err = hostKeyCheck(nil, "127.0.0.1", port, nil, write, "accept-new", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := hkDial(t, srv, cb, algos); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	if data, _ := os.ReadFile(write); !bytes.Equal(data, line) {
		t.Errorf("known_hosts:\n%s\nwant once:\n%s", data, line)
	}
}

// A @cert-authority line for the host is no host key: a server without a
// certificate is unknown, not changed, as OpenSSH says.
func TestHostKeyCertAuthorityPlainServer(t *testing.T) {
	srv := hkTwoKeyServer(t)
	ca := hkPublicKey(t, hkKeygen(t, "ed25519")+".pub")
	kh := hkWrite(t, "known_hosts", []byte(fmt.Sprintf("@cert-authority [127.0.0.1]:%d %s", hkPort(t, srv), ssh.MarshalAuthorizedKey(ca))))
	_, err := hkCheckDial(t, srv, []string{kh}, "", "yes")
	hkHostKeyError(t, err, ErrHostKeyUnknown)
	err, stderr := hkOpenSSH(t, srv, kh)
	if err == nil || strings.Contains(stderr, "CHANGED") {
		t.Errorf("OpenSSH: %v\n%s", err, stderr)
	}
}

// Concurrent connections with accept-new each write whole lines, and a file
// whose last line lacks its newline keeps that line.
func TestHostKeyAcceptNewConcurrent(t *testing.T) {
	srv := hkTwoKeyServer(t)
	kh := hkWrite(t, "known_hosts", []byte("example.com "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey)))))
	const n = 8
	port := hkPort(t, srv)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cb, algos, err := hostKeyCheck(nil, "127.0.0.1", port, []string{kh}, kh, "accept-new", nil)
			if err == nil {
				_, err = hkDial(t, srv, cb, algos)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent accept-new: %v", err)
		}
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "example.com ssh-ed25519 ") {
		t.Fatalf("known_hosts:\n%s", data)
	}
	want := strings.TrimSpace(string(hkKeyscan(t, srv, "-t", "ed25519")))
	for _, l := range lines[1:] {
		if l != want {
			t.Errorf("line %q, want %q", l, want)
		}
	}
	t.Logf("%d concurrent accept-new connections wrote %d lines", n, len(lines)-1)
}

// Without a server: the line format for port 22, names that must not be
// written, missing and unreadable files, bad arguments.
func TestKnownHostsLine(t *testing.T) {
	key := hkOtherKey(t)
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	blob := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))

	for _, tc := range []struct {
		host string
		port int
		want string
	}{
		{"example.com", 22, "example.com " + blob + "\n"},
		{"example.com", 2222, "[example.com]:2222 " + blob + "\n"},
		{"::1", 22, "::1 " + blob + "\n"},
		{"::1", 2222, "[::1]:2222 " + blob + "\n"},
	} {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		cb, _, err := hostKeyCheck(nil, tc.host, tc.port, []string{kh}, kh, "accept-new", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cb("ignored:1", remote, key); err != nil {
			t.Fatalf("%s %d: %v", tc.host, tc.port, err)
		}
		data, _ := os.ReadFile(kh)
		if string(data) != tc.want {
			t.Errorf("%s %d: wrote %q, want %q", tc.host, tc.port, data, tc.want)
		}
		cb, _, err = hostKeyCheck(nil, tc.host, tc.port, []string{kh}, "", "yes", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cb("ignored:1", remote, key); err != nil {
			t.Errorf("%s %d after accept-new: %v", tc.host, tc.port, err)
		}
	}

	// A name with pattern characters is not written.
	for _, host := range []string{"*", "a,b", "a b", "!a", "|1|x", "@revoked"} {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		cb, _, err := hostKeyCheck(nil, host, 22, []string{kh}, kh, "accept-new", nil)
		if err != nil {
			t.Fatal(err)
		}
		err = cb("ignored:1", remote, key)
		hkHostKeyError(t, err, ErrHostKeyUnknown)
		if _, serr := os.Stat(kh); serr == nil {
			t.Errorf("%q: known_hosts written", host)
		}
	}

	// Missing files are empty; a file that cannot be read is an error.
	cb, _, err := hostKeyCheck(nil, "example.com", 22, []string{filepath.Join(t.TempDir(), "none")}, "", "yes", nil)
	if err != nil {
		t.Fatal(err)
	}
	hkHostKeyError(t, cb("x:22", remote, key), ErrHostKeyUnknown)
	if _, _, err := hostKeyCheck(nil, "example.com", 22, []string{t.TempDir()}, "", "yes", nil); err == nil {
		t.Error("a directory as known_hosts is no error")
	}

	for _, bad := range []struct {
		host, write, strict string
		port                int
	}{
		{"", "", "yes", 22},
		{"h", "", "yes", 0},
		{"h", "", "yes", 65536},
		{"h", "", "maybe", 22},
		{"h", "", "accept-new", 22},
	} {
		if _, _, err := hostKeyCheck(nil, bad.host, bad.port, nil, bad.write, bad.strict, nil); err == nil {
			t.Errorf("hostKeyCheck(nil, %q, %d, %q, %q) is no error", bad.host, bad.port, bad.write, bad.strict)
		}
	}
}

// Host names and known_hosts patterns match whatever their case, as in
// OpenSSH: "[LOCALHOST]:port" with another key is a changed key for
// localhost, which accept-new must not record beside it (a MITM's key would
// be trusted from then on).
func TestHostKeyPatternCase(t *testing.T) {
	srv := hkTwoKeyServer(t)
	port := hkPort(t, srv)
	wrongKey := hkOtherKey(t)
	changed := fmt.Sprintf("[LOCALHOST]:%d %s", port, ssh.MarshalAuthorizedKey(wrongKey))
	for _, strict := range []string{"yes", "accept-new", "no"} {
		for _, name := range []string{"localhost", "LocalHost"} {
			kh := hkWrite(t, "known_hosts", []byte(changed))
			_, err := hkCheckDialAs(t, srv, name, []string{kh}, kh, strict)
			hkErr := hkHostKeyError(t, err, ErrHostKeyChanged)
			// The error names the file itself, not the lowercased copy read.
			hkContains(t, hkErr.Error(), kh+":1", fmt.Sprintf("[localhost]:%d", port))
			if data, _ := os.ReadFile(kh); string(data) != changed {
				t.Errorf("%s, %s: known_hosts was written:\n%s", strict, name, data)
			}
		}
	}
	kh := hkWrite(t, "known_hosts", []byte(changed))
	if err, _ := hkOpenSSHAs(t, srv, "localhost", kh); err == nil {
		t.Error("OpenSSH connects with a changed key")
	}

	// The right key under a name in capitals, in a pattern list, with a
	// marker line before it and a hashed line beside it: accepted, as by
	// OpenSSH.
	right := bytes.Replace(hkKeyscan(t, srv, "-t", "ed25519"), []byte("[127.0.0.1]"), []byte("[LocalHost]"), 1)
	hashed := hkKeyscan(t, srv, "-H", "-t", "rsa")
	data := append(append([]byte("@revoked *.Example.COM "+string(ssh.MarshalAuthorizedKey(wrongKey))+"other.example,"), right...), hashed...)
	kh = hkWrite(t, "known_hosts", data)
	for _, name := range []string{"localhost", "LOCALHOST"} {
		if _, err := hkCheckDialAs(t, srv, name, []string{kh}, "", "yes"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err, stderr := hkOpenSSHAs(t, srv, "localhost", kh); err != nil {
		t.Errorf("OpenSSH disagrees: %v\n%s", err, stderr)
	}
	if after, _ := os.ReadFile(kh); !bytes.Equal(after, data) {
		t.Errorf("known_hosts changed by reading it:\n%s", after)
	}
}

func TestLowerHostPatterns(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Host.Example ssh-ed25519 AAAAC3Nz Comment\n", "host.example ssh-ed25519 AAAAC3Nz Comment\n"},
		{"  @cert-authority *.EXAMPLE ssh-ed25519 AAAA X\r\n", "  @cert-authority *.example ssh-ed25519 AAAA X\r\n"},
		{"@Revoked A ssh-rsa AAAA", "@Revoked a ssh-rsa AAAA"},
		{"|1|AbC=|DeF= ssh-ed25519 AAAA\n# Comment Here\n\n[A]:22,B ssh-rsa AAAA", "|1|AbC=|DeF= ssh-ed25519 AAAA\n# Comment Here\n\n[a]:22,b ssh-rsa AAAA"},
	} {
		got, changed := lowerHostPatterns([]byte(tc.in))
		if string(got) != tc.want || changed != (tc.in != tc.want) {
			t.Errorf("lowerHostPatterns(%q) = %q, %v; want %q", tc.in, got, changed, tc.want)
		}
	}
}

// StrictHostKeyChecking no records an unknown key as accept-new does, and
// accepts it with a warning when it cannot record it.
func TestHostKeyStrictNo(t *testing.T) {
	srv := hkTwoKeyServer(t)
	kh := hkWrite(t, "known_hosts", nil)
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cb, algos, err := hostKeyCheck(nil, "127.0.0.1", hkPort(t, srv), []string{kh}, kh, "no", log)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hkDial(t, srv, cb, algos)
	if err != nil {
		t.Fatalf("no, unknown key: %v", err)
	}
	recorded, _ := os.ReadFile(kh)
	if !bytes.Contains(recorded, bytes.TrimSpace(ssh.MarshalAuthorizedKey(key))) {
		t.Errorf("the key was not recorded: %q", recorded)
	}
	hkContains(t, logs.String(), "level=WARN", "permanently added", ssh.FingerprintSHA256(key), kh)

	// Nowhere to record it: accepted, with a warning.
	logs.Reset()
	cb, algos, err = hostKeyCheck(nil, "127.0.0.1", hkPort(t, srv), nil, "", "no", log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hkDial(t, srv, cb, algos); err != nil {
		t.Fatalf("no, no file: %v", err)
	}
	hkContains(t, logs.String(), "level=WARN", "without recording it", "no known_hosts file to write")

	// accept-new logs what it added, at INFO.
	logs.Reset()
	kh = hkWrite(t, "known_hosts", nil)
	cb, algos, err = hostKeyCheck(nil, "127.0.0.1", hkPort(t, srv), []string{kh}, kh, "accept-new", log)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = hkDial(t, srv, cb, algos); err != nil {
		t.Fatal(err)
	}
	hkContains(t, logs.String(), "level=INFO", "permanently added", ssh.FingerprintSHA256(key), kh, fmt.Sprintf("[127.0.0.1]:%d", hkPort(t, srv)))
}
