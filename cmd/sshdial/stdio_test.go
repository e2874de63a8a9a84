package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
)

func TestStdioFlags(t *testing.T) {
	o, err := parseArgs([]string{"-W", "db.internal:5432", "bastion"})
	if err != nil || o.stdio == nil || o.stdio.host != "db.internal" || o.stdio.port != 5432 {
		t.Fatalf("-W host:port: %+v, %v", o, err)
	}
	if o, err := parseArgs([]string{"-W[::1]:22", "bastion"}); err != nil || o.stdio.host != "::1" || o.stdio.port != 22 {
		t.Fatalf("-W [::1]:22: %+v, %v", o, err)
	}
	if o, err := parseArgs([]string{"-W", "/run/app.sock", "bastion"}); err != nil || o.stdio.path != "/run/app.sock" {
		t.Fatalf("-W /socket: %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"-W", "a:1", "-W", "b:2", "h"},
		{"-W", "a:1", "-L", "1:a:2", "h"},
		{"-W", "a:1", "-R", "1:a:2", "h"},
		{"-W", "a:1", "-D", "1080", "h"},
		{"-W", "a:1", "--http-proxy", "3128", "h"},
		{"-W", "a", "h"},
		{"-W", "a:0", "h"},
		{"-W", ":22", "h"},
		{"-W", "a:b:c", "h"},
		{"-W", "a\n:1", "h"},
		{"-W"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("%q: no error", args)
		} else if _, ok := err.(*usageError); !ok {
			t.Errorf("%q: %v is not a usage error", args, err)
		}
	}
	if code, _, stderr := runSync(t, 10*time.Second, "-W", "a:1", "-L", "1:a:2", "h"); code != exitUsage || !strings.Contains(stderr, "-W cannot be used with -L") {
		t.Errorf("-W with -L: exit %d, %s", code, stderr)
	}
}

// stdioDialer is a Dialer on an in-process SSH server.
func stdioDialer(t *testing.T) *sshdial.Dialer {
	d, _ := stdioServer(t)
	return d
}

func stdioServer(t *testing.T) (*sshdial.Dialer, *sshtest.Server) {
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	client, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	return sshdial.New(client), srv
}

type stdioResult struct {
	code int
	out  string
}

func startStdio(t *testing.T, target endpoint, in io.Reader) (<-chan stdioResult, *testutil.SyncBuffer) {
	d := stdioDialer(t)
	res := make(chan stdioResult, 1)
	var errOut testutil.SyncBuffer
	go func() {
		var out bytes.Buffer
		code := runStdio(context.Background(), d, target, 10*time.Second, in, &out, &errOut)
		res <- stdioResult{code, out.String()}
	}()
	return res, &errOut
}

func waitStdio(t *testing.T, res <-chan stdioResult) stdioResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("-W did not end")
		return stdioResult{}
	}
}

// Standard input's end half-closes the tunnel, and the target's whole
// answer still reaches standard output before the command exits 0.
func TestStdioHalfClose(t *testing.T) {
	// The target answers only after reading to EOF.
	target := serveOnce(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(b))
		c.Write([]byte(" done"))
	})
	res, errOut := startStdio(t, target, strings.NewReader("hello through -W"))
	r := waitStdio(t, res)
	if r.code != exitOK || r.out != "HELLO THROUGH -W done" {
		t.Fatalf("exit %d, out %q, stderr %s", r.code, r.out, errOut)
	}
}

// The target's end ends the command, after everything it sent is written,
// although standard input is still open.
func TestStdioTargetEnds(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	target := serveOnce(t, func(c net.Conn) {
		io.WriteString(c, big)
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	res, errOut := startStdio(t, target, pr)
	r := waitStdio(t, res)
	if r.code != exitOK || r.out != big {
		t.Fatalf("exit %d, %d bytes out of %d, stderr %s", r.code, len(r.out), len(big), errOut)
	}
	pw.Close() // lets the stdin goroutine end
}

// A target the server cannot reach: exit 255, as ssh -W.
func TestStdioTargetRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	res, errOut := startStdio(t, endpoint{host: "127.0.0.1", port: addr.Port}, strings.NewReader(""))
	r := waitStdio(t, res)
	if r.code != exitConnection || !strings.Contains(errOut.String(), "stdio forwarding to 127.0.0.1:") {
		t.Fatalf("exit %d, stderr %s", r.code, errOut)
	}
}

// serveOnce serves one connection with handle, closing it after.
func serveOnce(t *testing.T, handle func(net.Conn)) endpoint {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		handle(c)
		c.Close()
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return endpoint{host: "127.0.0.1", port: l.Addr().(*net.TCPAddr).Port}
}

// The SSH connection lost under the tunnel: exit 255, as ssh. SIGINT
// (ctx's end) meanwhile: exit 0.
func TestStdioConnectionLost(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	for _, lose := range []string{"connection", "signal"} {
		target := serveOnce(t, func(c net.Conn) {
			io.WriteString(c, "hello")
			<-hold
		})
		d, srv := stdioServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		defer pw.Close()
		res := make(chan stdioResult, 1)
		var errOut testutil.SyncBuffer
		var out testutil.SyncBuffer
		go func() {
			res <- stdioResult{code: runStdio(ctx, d, target, 10*time.Second, pr, &out, &errOut)}
		}()
		if !eventually(10*time.Second, 10*time.Millisecond, func() bool { return out.String() == "hello" }) {
			t.Fatalf("%s: nothing came through: %q", lose, out.String())
		}
		want := exitConnection
		if lose == "connection" {
			srv.CloseClientConnections()
		} else {
			cancel()
			want = exitOK
		}
		if r := waitStdio(t, res); r.code != want {
			t.Fatalf("%s lost: exit %d, want %d; stderr %s", lose, r.code, want, errOut.String())
		}
		pw.Close()
	}
}
