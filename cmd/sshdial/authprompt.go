package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sshdial/sshdial"
)

// The prompter also asks for passwords and answers keyboard-interactive
// questions (one-time codes, PAM's prompts), on the same terminal and on the
// same terms as passphrases: one prompt at a time, only while the first
// connection is made, never with BatchMode=yes (then there is no
// prompter). Unlike a passphrase, an answer is never kept: a one-time code
// is good once, and a password is the server's to check. A reconnect that
// needs one therefore fails with an error saying so, which the Dialer logs;
// the next dial tries again (and succeeds once the server no longer asks,
// for example with a key).

// errNotAsked is the error of a password or a keyboard-interactive question
// that comes after the first connection: nobody may be there to answer it.
var errNotAsked = errors.New("sshdial asks on the terminal only while the first connection is made; the next connection attempt tries again")

// challenge is Connect's WithKeyboardInteractive callback: it shows the
// server's name and instruction, then asks each question, echoing the
// answer only where the server says it may (a user name, not a code).
// The server's text is shown with control characters escaped.
func (p *prompter) challenge(ctx context.Context, c sshdial.Challenge) ([]string, error) {
	if len(c.Questions) == 0 && isDone(p.stopped) {
		return nil, nil // nothing to answer
	}
	if isDone(p.stopped) {
		return nil, fmt.Errorf("%s@%s asks for keyboard-interactive answers (a one-time code?): %w", c.User, c.Host, errNotAsked)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, text := range []string{c.Name, c.Instruction} {
		if text != "" {
			fmt.Fprintln(p.out, strings.TrimRight(printable(text), "\n"))
		}
	}
	answers := make([]string, len(c.Questions))
	for i, q := range c.Questions {
		echo := i < len(c.Echo) && c.Echo[i]
		b, err := p.read(printable(q), echo)
		if !echo {
			fmt.Fprintln(p.out) // the typed newline was not shown
		}
		if err != nil {
			return nil, fmt.Errorf("keyboard-interactive for %s@%s: %w", c.User, c.Host, err)
		}
		answers[i] = string(b)
	}
	return answers, nil
}

// password returns Connect's WithPassword callback for destination: it asks
// "destination's password:" without echo, and after a refused password says
// so before asking again, as ssh does.
func (p *prompter) password(destination string) func(context.Context) (string, error) {
	asked := 0
	return func(context.Context) (string, error) { // the prompt ends with stop, as the passphrase's
		if isDone(p.stopped) {
			return "", fmt.Errorf("%s asks for a password: %w", destination, errNotAsked)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if asked++; asked > 1 {
			fmt.Fprintln(p.out, "Permission denied, please try again.")
		}
		b, err := p.read(printable(destination)+"'s password: ", false)
		fmt.Fprintln(p.out)
		if err != nil {
			return "", fmt.Errorf("password for %s: %w", destination, err)
		}
		return string(b), nil
	}
}

// printable returns text with what a terminal would act on instead of
// showing (escape sequences, carriage returns, invalid UTF-8) escaped as
// \xNN or \u{N}; newlines and tabs are kept.
func printable(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, text[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u{%x}`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// readLine reads a line from the terminal in its usual (echoing) mode, a
// byte at a time so that nothing after the line is taken, without its end
// (\n, \r\n).
func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	var buf [1]byte
	for {
		n, err := r.Read(buf[:])
		if n > 0 {
			if buf[0] == '\n' {
				return []byte(strings.TrimSuffix(string(line), "\r")), nil
			}
			line = append(line, buf[0])
		}
		if err == io.EOF && len(line) > 0 {
			return line, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
