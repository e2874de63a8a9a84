package sshdial

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/crypto/ssh"
)

// @cert-authority and @revoked lines whose patterns have capitals are read
// through the lowercased copy like any other: the authority is trusted
// for the host whatever the case (as by OpenSSH), a certificate for
// another name is refused as one (the line named is the file's own), and a
// revoked authority stays revoked.
func TestHostKeyCertAuthorityCapitals(t *testing.T) {
	srv, _, ca := hkCertServer(t, "localhost")
	port := hkPort(t, srv)
	caLine := fmt.Sprintf("# comment\n@cert-authority [LocalHost]:%d %s", port, ssh.MarshalAuthorizedKey(ca))
	kh := hkWrite(t, "known_hosts", []byte(caLine))
	if _, err := hkCheckDialAs(t, srv, "localhost", []string{kh}, "", "yes"); err != nil {
		t.Errorf("an authority for [LocalHost]: %v", err)
	}
	if err, stderr := hkOpenSSHAs(t, srv, "localhost", kh); err != nil {
		t.Errorf("OpenSSH disagrees: %v\n%s", err, stderr)
	}

	// A name the certificate does not hold, under an authority trusted for
	// it: refused, whatever the mode, naming the authority's line.
	other := hkWrite(t, "known_hosts", []byte(fmt.Sprintf("# comment\n@cert-authority [127.0.0.1]:%d,[LocalHost]:%d %s", port, port, ssh.MarshalAuthorizedKey(ca))))
	for _, strict := range []string{"yes", "no"} {
		_, err := hkCheckDialAs(t, srv, "127.0.0.1", []string{other}, other, strict)
		hkContains(t, hkHostKeyError(t, err, ErrHostKeyChanged).Error(), other+":2", "not valid for 127.0.0.1")
	}
	if err, _ := hkOpenSSH(t, srv, other); err == nil {
		t.Error("OpenSSH accepts the certificate for another name")
	}

	revoked := caLine + "@revoked *.EXAMPLE,LOCALHOST,[LOCALHOST]:* " + string(ssh.MarshalAuthorizedKey(ca))
	kh = hkWrite(t, "known_hosts", []byte(revoked))
	for _, strict := range []string{"yes", "no"} {
		_, err := hkCheckDialAs(t, srv, "localhost", []string{kh}, kh, strict)
		hkContains(t, hkHostKeyError(t, err, ErrHostKeyChanged).Error(), "@revoked", kh+":3")
	}
	if data, _ := os.ReadFile(kh); string(data) != revoked {
		t.Errorf("known_hosts was written:\n%s", data)
	}
	if err, _ := hkOpenSSHAs(t, srv, "localhost", kh); err == nil {
		t.Error("OpenSSH accepts a revoked authority")
	}
}
