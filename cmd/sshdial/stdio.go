package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sshdial/sshdial"
)

// stdin is what -W reads; tests replace it.
var stdin io.Reader = os.Stdin

// setStdio handles -W host:port (or -W /socket): standard input and output
// become one tunnel to that address through the SSH server, as ssh -W.
func (o *options) setStdio(val string) error {
	if o.stdio != nil {
		return usagef("-W given twice: only one stdio forward")
	}
	fields, err := splitFields(val)
	bad := func(why string) error {
		return usagef("-W %q: %s; want host:port or /socket", val, why)
	}
	switch {
	case err != nil:
		return bad(err.Error())
	case strings.ContainsAny(val, "\x00\r\n"):
		return bad("control character")
	case len(fields) == 1 && strings.HasPrefix(fields[0], "/"):
		o.stdio = &endpoint{path: fields[0]}
	case len(fields) == 2:
		if fields[0] == "" {
			return bad("empty host")
		}
		port, err := parsePort(fields[1], false)
		if err != nil {
			return bad(err.Error())
		}
		o.stdio = &endpoint{host: fields[0], port: port}
	default:
		return bad("not host:port")
	}
	return nil
}

// checkStdio refuses what -W cannot go with: it is the whole job.
func (o *options) checkStdio() error {
	if len(o.local)+len(o.remote)+len(o.dynamic)+len(o.httpPx) > 0 {
		return usagef("-W cannot be used with -L, -R, -D or --http-proxy: it makes standard input and output the one tunnel")
	}
	if o.background {
		return usagef("-W cannot be used with -f: the tunnel is standard input and output")
	}
	return nil
}

// runStdio joins in and out to one tunnel to target through d, as ssh -W
// does, and returns the exit code. End of in half-closes the tunnel (the
// target reads EOF) and the target's answer is still written out; end of
// the target's side ends the command once everything it sent is written,
// whether or not in has ended. A tunnel that cannot be opened, or an SSH
// connection lost under it, exits 255 as ssh does; ctx's end (SIGINT,
// SIGTERM) exits 0. d is closed on return.
func runStdio(ctx context.Context, d *sshdial.Dialer, target endpoint, dialWait time.Duration, in io.Reader, out, stderr io.Writer) int {
	defer d.Close()
	network, address := "tcp", target.String()
	if target.path != "" {
		network, address = "unix", target.path
	}
	dialCtx, cancel := context.WithTimeout(ctx, dialWait)
	conn, err := d.DialContext(dialCtx, network, address)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		fmt.Fprintf(stderr, "sshdial: stdio forwarding to %s failed: %v\n", address, err)
		return exitConnection
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	go func() {
		// Standard input to the target; its end half-closes the tunnel.
		// A read of in cannot be taken back: when the target ends first,
		// this goroutine stays until in ends or the process exits.
		io.Copy(conn, in)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	_, err = io.Copy(outWriter{out}, conn)
	var werr *writeError
	switch {
	case err == nil, ctx.Err() != nil:
		return exitOK
	case errors.As(err, &werr):
		return exitOK // nobody reads standard output any more
	}
	fmt.Fprintf(stderr, "sshdial: stdio forwarding to %s: %v\n", address, err)
	return exitConnection
}

// writeError marks an error writing standard output, to tell it apart from
// one reading the tunnel.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// outWriter wraps standard output's errors in writeError.
type outWriter struct{ w io.Writer }

func (w outWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}
