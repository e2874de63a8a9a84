package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
)

// Keyboard-interactive questions and passwords on a terminal: the server's
// text with control characters escaped, echo only where the server allows
// it, ssh's "try again" after a refused password, and nothing asked after
// stop (a reconnect gets an error saying a code is needed).
func TestAuthPrompts(t *testing.T) {
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
	defer p.close()
	type result struct {
		answers []string
		err     error
	}
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
	ask := func(c sshdial.Challenge) <-chan result {
		res := make(chan result, 1)
		go func() {
			a, err := p.challenge(context.Background(), c)
			res <- result{a, err}
		}()
		return res
	}

	res := ask(sshdial.Challenge{Host: "bastion", User: "alice", Name: "Duo two-factor",
		Instruction: "Enter \x1b[31mthe\x1b[0m code\r\n", Questions: []string{"Device: ", "Passcode: "}, Echo: []bool{true, false}})
	scr.waitFor(t, "Device: ", 1)
	master.Write([]byte("phone1\r"))
	scr.waitFor(t, "Passcode: ", 1)
	master.Write([]byte("864209\r"))
	r := get(res)
	if r.err != nil || len(r.answers) != 2 || r.answers[0] != "phone1" || r.answers[1] != "864209" {
		t.Fatalf("answers: %q, %v", r.answers, r.err)
	}
	shown := scr.String()
	if !strings.Contains(shown, "Duo two-factor") || !strings.Contains(shown, `Enter \x1b[31mthe\x1b[0m code\x0d`) {
		t.Fatalf("name and instruction not shown, or not escaped:\n%q", shown)
	}
	if strings.Contains(shown, "\x1b") {
		t.Fatalf("the server's escape sequence reached the terminal:\n%q", shown)
	}
	if !strings.Contains(shown, "phone1") {
		t.Fatalf("the echoed answer was not shown:\n%q", shown)
	}
	if strings.Contains(shown, "864209") {
		t.Fatalf("the code was echoed:\n%q", shown)
	}

	// A password, asked again after a refused one.
	pw := p.password("alice@bastion")
	pres := make(chan result, 2)
	for i := range 2 {
		go func() {
			s, err := pw(context.Background())
			pres <- result{[]string{s}, err}
		}()
		scr.waitFor(t, "alice@bastion's password: ", i+1)
		master.Write([]byte("s3cret-word\r"))
		if r := get(pres); r.err != nil || r.answers[0] != "s3cret-word" {
			t.Fatalf("password: %q, %v", r.answers, r.err)
		}
	}
	if strings.Count(scr.String(), "Permission denied, please try again.") != 1 || strings.Contains(scr.String(), "s3cret") {
		t.Fatalf("no 'try again' before the second password, or the password was echoed:\n%s", scr.String())
	}

	// After the first connection: nothing is asked; an error says why.
	p.stop()
	r = get(ask(sshdial.Challenge{Host: "bastion", User: "alice", Questions: []string{"Passcode: "}, Echo: []bool{false}}))
	if !errors.Is(r.err, errNotAsked) || !strings.Contains(r.err.Error(), "alice@bastion asks for keyboard-interactive answers (a one-time code?)") {
		t.Fatalf("after stop: %q, %v", r.answers, r.err)
	}
	if r := get(ask(sshdial.Challenge{Host: "bastion", Instruction: "Welcome"})); r.err != nil || len(r.answers) != 0 {
		t.Fatalf("after stop, a round without questions: %q, %v", r.answers, r.err)
	}
	if _, err := pw(context.Background()); !errors.Is(err, errNotAsked) {
		t.Fatalf("after stop, a password: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // on purpose: nothing may be written to the screen in this while
	if s := scr.String(); strings.Count(s, "Passcode: ") != 1 || strings.Count(s, "password: ") != 2 || strings.Contains(s, "Welcome") {
		t.Fatalf("asked after stop:\n%s", s)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"Code: ":             "Code: ",
		"a\x1b]0;title\x07b": `a\x1b]0;title\x07b`,
		"line\nnext\ttab":    "line\nnext\ttab",
		"bad \xff utf8":      `bad \xff utf8`,
		"rtl \u202e x":       `rtl \u{202e} x`,
		"Mot de passe : é":   "Mot de passe : é",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
