package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// A proxy client asking for a host with a NUL byte, which OpenSSH's sshd
// takes as a fatal protocol error (it drops the whole SSH connection, and
// sshdial then reconnects, over and over, for each such request), gets an
// error reply: SOCKS5 0x04, SOCKS4a 91, HTTP 400. The SSH connection stays:
// a tunnel open through it goes on, and sshdial never reconnects.
func TestProxyRefusesHostsFatalToSSHD(t *testing.T) {
	f := newFixture(t)
	echo := testutil.EchoServer(t, "tcp")
	c := startCLI(t, f.args("-D", "0", "--http-proxy", "0", "-L", "0:"+echo.Addr().String())...)
	socks, web := c.addr("-D", 0), c.addr("--http-proxy", 0)

	tunnel, err := net.DialTimeout("tcp", c.addr("-L", 0), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tunnel.Close()
	tunnel.SetDeadline(time.Now().Add(60 * time.Second))
	if err := testutil.RoundTrip(tunnel, "before"); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"a\x00b", "localhost\x00.example", "\x00"} {
		code, conn, err := advSOCKS5(socks, name, 80)
		if conn != nil {
			conn.Close()
		}
		if err != nil || code != 0x04 {
			t.Errorf("SOCKS5 CONNECT to %q: reply %#x, %v; want 0x04 (host unreachable)", name, code, err)
		}
		if err := testutil.RoundTrip(tunnel, "after SOCKS5 "+name); err != nil {
			t.Fatalf("the open tunnel after a SOCKS5 CONNECT to %q: %v", name, err)
		}
	}
	if code, err := socks4a(socks, strings.Repeat("a", 300)); err != nil || code != 91 {
		t.Errorf("SOCKS4a CONNECT to a 300-byte name: reply %d, %v; want 91", code, err)
	}
	for _, target := range []string{"a\x00b:80", strings.Repeat("a", 256) + ":80"} {
		code, err := httpConnectStatus(web, target)
		if err != nil || code != http.StatusBadRequest {
			t.Errorf("HTTP CONNECT to %.20q: status %d, %v; want 400", target, code, err)
		}
	}
	if err := testutil.RoundTrip(tunnel, "after"); err != nil {
		t.Fatalf("the open tunnel after the requests: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // a lost connection would have been noticed
	if n := c.s.d.Stats().Reconnects; n != 0 {
		t.Errorf("Stats().Reconnects = %d, want 0: the SSH connection was lost", n)
	}
	if err := testutil.RoundTrip(tunnel, "still"); err != nil {
		t.Fatalf("the open tunnel at the end: %v", err)
	}
}

// socks4a asks the SOCKS4 server at addr for name:80 as SOCKS4a and returns
// the reply code.
func socks4a(addr, name string) (byte, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(40 * time.Second))
	req := binary.BigEndian.AppendUint16([]byte{4, 1}, 80)
	req = append(req, 0, 0, 0, 1)
	req = append(req, "adv\x00"+name+"\x00"...)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return b[1], nil
}

// httpConnectStatus sends a CONNECT for target to the HTTP proxy at addr
// and returns the status code.
func httpConnectStatus(addr, target string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(40 * time.Second))
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n", target); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
