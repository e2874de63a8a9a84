package sshdial

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// TestKnownHostsLongLine: ssh reads a known_hosts line of any length (a
// host list of thousands of names, as some fleets write), where x/crypto's
// parser fails the whole file on a line over 64 KiB. Each case is checked
// against OpenSSH's client too.
func TestKnownHostsLongLine(t *testing.T) {
	srv := hkTwoKeyServer(t)
	scanned := strings.Fields(string(bytes.TrimSpace(hkKeyscan(t, srv, "-t", "ed25519"))))
	self, key := scanned[0], scanned[1]+" "+scanned[2] // [127.0.0.1]:port
	other := strings.Fields(string(bytes.TrimSpace(hkRun(t, "cat", hkKeygen(t, "ed25519")+".pub"))))
	otherKey := other[0] + " " + other[1]
	var names strings.Builder
	for i := 0; names.Len() < 66_000; i++ { // over 64 KiB
		fmt.Fprintf(&names, "host-%d.fleet.example.com,", i)
	}
	many := strings.TrimSuffix(names.String(), ",")
	for _, c := range []struct {
		name, file string
		want       error // nil: the key is known
		// stricter: OpenSSH takes the key, and sshdial refuses it, as
		// it refuses a key that a @revoked line for any host names.
		stricter bool
	}{
		{"other hosts, then ours", many + " " + otherKey + "\n" + self + " " + key + "\n", nil, false},
		{"ours among many", many + "," + self + " " + key + "\n", nil, false},
		{"ours among many, another key", many + "," + self + " " + otherKey + "\n", ErrHostKeyChanged, false},
		{"ours negated among many", many + ",!" + self + "," + strings.ReplaceAll(self, "127.0.0.1", "127.0.0.*") + " " + key + "\n", ErrHostKeyUnknown, false},
		{"ours revoked among many", "@revoked " + many + "," + self + " " + key + "\n" + self + " " + key + "\n", ErrHostKeyChanged, false},
		{"others revoked", "@revoked " + many + " " + key + "\n" + self + " " + key + "\n", ErrHostKeyChanged, true},
		{"a long comment", self + " " + key + " " + strings.Repeat("c", 66_000) + "\n", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // ssh takes seconds over such a file
			file := hkWrite(t, "known_hosts", []byte(c.file))
			if len(c.file) < 65_536 {
				t.Fatalf("the file is only %d bytes", len(c.file))
			}
			err, stderr := hkOpenSSH(t, srv, file)
			if (err == nil) != (c.want == nil || c.stricter) {
				t.Fatalf("OpenSSH: %v, want %v (the case is wrong)\n%s", err, c.want, stderr)
			}
			_, err = hkCheckDial(t, srv, []string{file}, "", "yes")
			if c.want == nil && err != nil {
				t.Fatalf("OpenSSH takes the key, sshdial: %v", err)
			}
			if c.want != nil {
				hkHostKeyError(t, err, c.want)
			}
		})
	}
}

// TestKnownHostsFileBounded: a known_hosts file over 64 MiB (or one that
// never ends) fails the check with an error naming it, instead of being
// read into memory whole.
func TestKnownHostsFileBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "known_hosts")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk is used.
	if err := f.Truncate(maxKnownHostsFile + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	files := []string{big}
	if _, err := os.Stat("/dev/zero"); err == nil {
		files = append(files, "/dev/zero")
	}
	for _, file := range files {
		var err error
		testutil.Within(t, time.Minute, "reading "+file, func() {
			_, _, err = hostKeyCheck(nil, "h", 22, []string{file}, "", "yes", nil)
		})
		if err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v, want an error that it is too large", file, err)
		}
	}
	// At the limit, the file is read (and holds nothing).
	if err := os.Truncate(big, maxKnownHostsFile); err != nil {
		t.Fatal(err)
	}
	// Its one line of 64 MiB is read in linear time: a minute is
	// hundreds of times what it takes, and a quadratic pass over the
	// line takes hours.
	var err64 error
	testutil.Within(t, time.Minute, "reading a 64 MiB line", func() {
		_, _, err64 = hostKeyCheck(nil, "h", 22, []string{big}, "", "yes", nil)
	})
	if err64 != nil && strings.Contains(err64.Error(), "larger") {
		t.Errorf("a file of 64 MiB: %v", err64)
	}
}
