package sshdial

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestHostKeyFileWithNoValidLine: a known_hosts file whose only line
// cannot be read (an unknown marker, a key that is not base64) is an empty
// file to ssh, which goes on to the next file; x/crypto fails the whole
// set. The keys of the other file still work, the warning names the file,
// and with that file alone the key is unknown, as OpenSSH says.
func TestHostKeyFileWithNoValidLine(t *testing.T) {
	srv := hkTwoKeyServer(t)
	good := hkWrite(t, "known_hosts", hkKeyscan(t, srv, "-t", "ed25519"))
	key := strings.Fields(string(bytes.TrimSpace(hkKeyscan(t, srv, "-t", "ed25519"))))
	for _, bad := range []string{
		"@bogus 127.0.0.1 " + key[1] + " " + key[2] + "\n",
		"127.0.0.1 ssh-ed25519 not-base64!\n",
	} {
		badFile := hkWrite(t, "bad_known_hosts", []byte(bad))
		var log bytes.Buffer
		cb, algos, err := hostKeyCheck(nil, "127.0.0.1", hkPort(t, srv), []string{badFile, good}, "", "yes", slog.New(slog.NewTextHandler(&log, nil)))
		if err != nil {
			t.Fatalf("%q: hostKeyCheck: %v", bad, err)
		}
		if _, err := hkDial(t, srv, cb, algos); err != nil {
			t.Fatalf("%q: the key of the other file was not used: %v", bad, err)
		}
		hkContains(t, log.String(), "taken as empty", badFile)

		_, err = hkCheckDial(t, srv, []string{badFile}, "", "yes")
		hkHostKeyError(t, err, ErrHostKeyUnknown)
		if err, stderr := hkOpenSSH(t, srv, badFile); err == nil || !strings.Contains(stderr, "Host key verification failed") {
			t.Errorf("%q: OpenSSH disagrees: %v\n%s", bad, err, stderr)
		}
	}
}

// TestKnownHostsNULAfterHosts: a NUL byte that ends a line's host names.
// ssh 9.2 reads the key past it, later versions skip the line. sshdial
// takes the stricter of the two: a @revoked line is read as 9.2 reads it
// (the key is revoked, as ssh 9.2 says), another line is skipped (the key
// is unknown, where ssh 9.2 would take it).
func TestKnownHostsNULAfterHosts(t *testing.T) {
	srv := hkTwoKeyServer(t)
	scanned := strings.Fields(string(bytes.TrimSpace(hkKeyscan(t, srv, "-t", "ed25519"))))
	self, key := scanned[0], scanned[1]+" "+scanned[2]
	revoked := hkWrite(t, "known_hosts", []byte("@revoked "+self+"\x00 "+key+"\n"+self+" "+key+"\n"))
	if err, stderr := hkOpenSSH(t, srv, revoked); err == nil || !strings.Contains(stderr, "REVOKED") {
		t.Errorf("ssh takes a key revoked past a NUL (the case is wrong): %v\n%s", err, stderr)
	}
	_, err := hkCheckDial(t, srv, []string{revoked}, "", "yes")
	hkHostKeyError(t, err, ErrHostKeyChanged)

	// Revoked for another host: x/crypto revokes a key for every host.
	others := hkWrite(t, "known_hosts", []byte("@revoked other.example\x00\t"+key+"\n"+self+" "+key+"\n"))
	_, err = hkCheckDial(t, srv, []string{others}, "", "yes")
	hkHostKeyError(t, err, ErrHostKeyChanged)

	plain := hkWrite(t, "known_hosts", []byte(self+"\x00 "+key+"\n"))
	_, err = hkCheckDial(t, srv, []string{plain}, "", "yes")
	hkHostKeyError(t, err, ErrHostKeyUnknown)
}
