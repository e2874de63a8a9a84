package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// screen collects what the terminal shows.
type screen struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *screen) waitFor(t *testing.T, text string, count int) {
	t.Helper()
	if !eventually(10*time.Second, 5*time.Millisecond, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return strings.Count(s.buf.String(), text) >= count
	}) {
		t.Fatalf("the terminal never showed %q %d times:\n%s", text, count, s.String())
	}
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func encryptedKey(t *testing.T, passphrase string) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The passphrase prompt on a terminal: no echo, again after a wrong
// passphrase, at most three times, kept for reconnects, and none after
// stop.
func TestPassphrasePrompt(t *testing.T) {
	master, slave := openPTY(t)
	var scr screen
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			scr.mu.Lock()
			scr.buf.Write(buf[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	p := newPrompterOn(slave, slave)
	key := encryptedKey(t, "right horse")

	type result struct {
		pass []byte
		err  error
	}
	ask := func(file string) <-chan result {
		res := make(chan result, 1)
		go func() {
			pass, err := p.passphrase(context.Background(), file)
			res <- result{pass, err}
		}()
		return res
	}
	// get waits a bounded time for an answer: one that waits for typing
	// that never comes is a failure, not a hang.
	get := func(res <-chan result) result {
		t.Helper()
		select {
		case r := <-res:
			return r
		case <-time.After(20 * time.Second):
			p.close()
			t.Fatalf("no answer; the terminal shows:\n%s", scr.String())
			return result{}
		}
	}
	res := ask(key)
	scr.waitFor(t, "Enter passphrase for key '"+key+"': ", 1)
	master.Write([]byte("wrong staple\r"))
	scr.waitFor(t, "Bad passphrase, try again for '"+key+"': ", 1)
	master.Write([]byte("right horse\r"))
	r := get(res)
	if r.err != nil || string(r.pass) != "right horse" {
		t.Fatalf("passphrase: %q, %v", r.pass, r.err)
	}
	if strings.Contains(scr.String(), "staple") || strings.Contains(scr.String(), "horse") {
		t.Fatalf("the passphrase was echoed:\n%s", scr.String())
	}

	// Known now: a reconnect does not ask.
	r = get(ask(key))
	if string(r.pass) != "right horse" || strings.Count(scr.String(), "Enter passphrase") != 1 {
		t.Fatalf("asked again, or forgot: %q, %v\n%s", r.pass, r.err, scr.String())
	}

	// Three wrong answers give up on the key.
	other := encryptedKey(t, "other")
	res = ask(other)
	for i := 1; i <= 3; i++ {
		if i == 1 {
			scr.waitFor(t, "Enter passphrase for key '"+other+"': ", 1)
		} else {
			scr.waitFor(t, "Bad passphrase, try again for '"+other+"': ", i-1)
		}
		master.Write([]byte("nope\r"))
	}
	if r := get(res); r.err == nil || !strings.Contains(r.err.Error(), "3 wrong passphrases") {
		t.Fatalf("after three wrong passphrases: %q, %v", r.pass, r.err)
	}

	// After stop, nothing is asked.
	p.stop()
	before := scr.String()
	if r := get(ask(encryptedKey(t, "x"))); r.pass != nil || r.err != nil {
		t.Fatalf("after stop: %q, %v", r.pass, r.err)
	}
	if r := get(ask(key)); string(r.pass) != "right horse" {
		t.Fatalf("after stop, a known passphrase: %q, %v", r.pass, r.err)
	}
	time.Sleep(50 * time.Millisecond) // on purpose: nothing may be written to the screen in this while
	if scr.String() != before {
		t.Fatalf("asked after stop:\n%s", strings.TrimPrefix(scr.String(), before))
	}
}
