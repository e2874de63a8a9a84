package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// passphrasePrompts is how many times a passphrase is asked for before the
// key is given up, as ssh's NumberOfPasswordPrompts default.
const passphrasePrompts = 3

// prompter asks on the terminal for the passphrase of an encrypted identity
// file, as ssh(1) does: only when the server would accept the key, without
// echo, again after a wrong one, and only while the first connection is
// made. A passphrase that decrypted its file is kept in memory for the life
// of the process, so that reconnects, which nobody may be there to answer,
// do not need to ask (ssh keeps the decrypted
// key for its life instead; an agent is the way to keep neither here).
//
// Prompts are one at a time. close puts the terminal back as it was if
// the process ends while a prompt is reading.
type prompter struct {
	tty *os.File  // read without echo
	out io.Writer // the prompts

	mu sync.Mutex // one prompt at a time

	knownMu sync.Mutex
	known   map[string][]byte // passphrases that decrypted their file

	stateMu sync.Mutex
	state   *term.State // the terminal's state before the prompt now reading; nil when none

	// stopped is closed by stop: once the first connection is made or
	// given up, nothing more is asked (a reconnect must not wait for
	// someone to type), and a prompt reading then fails at once.
	stopped  chan struct{}
	stopOnce sync.Once
}

// errPromptInterrupted ends a prompt that stop interrupted.
var errPromptInterrupted = errors.New("the prompt on the terminal was interrupted")

// newPrompter returns a prompter on the controlling terminal (/dev/tty, or
// standard input where that is a terminal and there is no /dev/tty), or
// nil when there is no terminal: then encrypted keys are skipped.
func newPrompter() *prompter {
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		if term.IsTerminal(int(tty.Fd())) {
			return newPrompterOn(tty, tty)
		}
		tty.Close()
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		return newPrompterOn(os.Stdin, os.Stderr)
	}
	return nil
}

func newPrompterOn(tty *os.File, out io.Writer) *prompter {
	return &prompter{tty: tty, out: out, known: map[string][]byte{}, stopped: make(chan struct{})}
}

// passphrase is Connect's WithPassphrase callback. An empty answer gives no
// passphrase, and the key is not used; so does a key whose passphrase was
// not asked for before stop. The prompt itself ends with the connect's
// context (see stop), so ctx is not looked at.
func (p *prompter) passphrase(_ context.Context, file string) ([]byte, error) {
	p.knownMu.Lock()
	pass, ok := p.known[file]
	p.knownMu.Unlock()
	if ok || isDone(p.stopped) {
		return pass, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	prompt := fmt.Sprintf("Enter passphrase for key '%s': ", file)
	for try := 1; ; try++ {
		pass, err := p.read(prompt, false)
		fmt.Fprintln(p.out)
		if err != nil || len(pass) == 0 {
			return nil, err
		}
		_, err = ssh.ParseRawPrivateKeyWithPassphrase(data, pass)
		switch {
		case err == nil:
			p.knownMu.Lock()
			p.known[file] = pass
			p.knownMu.Unlock()
			return pass, nil
		case !errors.Is(err, x509.IncorrectPasswordError):
			return nil, err
		case try == passphrasePrompts:
			return nil, fmt.Errorf("%d wrong passphrases for %s", passphrasePrompts, file)
		}
		prompt = fmt.Sprintf("Bad passphrase, try again for '%s': ", file)
	}
}

// read writes prompt and reads a line from the terminal, without echo
// unless echo is set: echo is off before the prompt shows, so that nothing
// typed in answer is echoed. stop ends it.
func (p *prompter) read(prompt string, echo bool) ([]byte, error) {
	select {
	case <-p.stopped:
		return nil, errPromptInterrupted
	default:
	}
	fd := int(p.tty.Fd())
	st, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	p.stateMu.Lock()
	p.state = st
	p.stateMu.Unlock()
	off := !echo && echoOff(fd) == nil
	fmt.Fprint(p.out, prompt)
	type line struct {
		b   []byte
		err error
	}
	got := make(chan line, 1)
	go func() {
		// A read of the terminal cannot be taken back: after an
		// interrupt this goroutine waits for a line or the process's end.
		if echo || off {
			b, err := readLine(p.tty)
			got <- line{b, err}
			return
		}
		b, err := term.ReadPassword(fd)
		got <- line{b, err}
	}()
	select {
	case l := <-got:
		if off {
			p.restore()
		}
		p.stateMu.Lock()
		p.state = nil
		p.stateMu.Unlock()
		return l.b, l.err
	case <-p.stopped:
		return nil, errPromptInterrupted
	}
}

// stop ends the prompts: one that is reading fails at once and the
// terminal gets its echo back; later calls give only the passphrases
// known. The command calls it once the first connection is made or given
// up (^C, ConnectTimeout), which a prompt would otherwise hold up.
func (p *prompter) stop() {
	p.stopOnce.Do(func() { close(p.stopped) })
	p.restore()
}

// restore gives the terminal back the state it had before the prompt now
// reading, if one is.
func (p *prompter) restore() {
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	if p.state != nil {
		term.Restore(int(p.tty.Fd()), p.state)
		p.state = nil
	}
}

// close gives the terminal back its echo if a prompt is still reading, and
// closes /dev/tty. Prompts after it fail.
func (p *prompter) close() {
	p.stop()
	if p.tty != os.Stdin {
		p.tty.Close()
	}
}

// isDone reports whether ch is closed.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
