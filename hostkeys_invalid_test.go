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
