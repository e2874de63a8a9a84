package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// socketInodes returns the inodes of the sockets process pid holds.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return inodes
}

// tcpInode returns the inode of the TCP socket with the given local and
// remote addresses, from /proc/net/tcp (IPv4 loopback).
func tcpInode(t *testing.T, local, remote *net.TCPAddr) string {
	t.Helper()
	hexAddr := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == hexAddr(local) && f[2] == hexAddr(remote) {
			return f[9]
		}
	}
	t.Fatalf("no socket %v -> %v in /proc/net/tcp", local, remote)
	return ""
}

// -L and -D through a master hand each accepted connection to it: the
// master holds the very socket sshdial accepted (so the data needs no copy
// in sshdial), no login is made, and the status counts the bytes once the
// tunnel has ended.
func TestHandOverToMaster(t *testing.T) {
	f := newFixture(t, "LogLevel INFO")
	m := f.srv.StartMaster(t)
	waitSSHDLogins(t, f.srv, 1, "the master's login")
	target := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+target)...)

	conn, err := net.DialTimeout("tcp", c.addr("-L", 0), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if err := testutil.RoundTrip(conn, "handed over"); err != nil {
		t.Fatal(err)
	}
	// The accepted socket: local is -L's address, remote our client's.
	accepted := tcpInode(t, conn.RemoteAddr().(*net.TCPAddr), conn.LocalAddr().(*net.TCPAddr))
	if !socketInodes(t, m.Pid())[accepted] {
		t.Fatalf("the master does not hold the accepted socket %s: the tunnel is copied by sshdial", accepted)
	}
	if !socketInodes(t, os.Getpid())[accepted] {
		t.Fatalf("sshdial (this process) does not keep its descriptor of the accepted socket %s", accepted)
	}
	conn.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
		t.Fatalf("after CloseWrite: %q, %v; want a clean EOF", b, err)
	}
	waitSSHDLogins(t, f.srv, 1, "a tunnel through the master logged in")
	fw := c.s.forwards[0]
	waitUntil(t, "the tunnel's end", func() bool { return fw.open.Load() == 0 })
	if s, r := fw.sent.Load(), fw.received.Load(); s != int64(len("handed over")) || r != s {
		t.Errorf("forward counts sent %d, received %d; want %d each", s, r, len("handed over"))
	}
}

// The master killed in the middle of a download through -L: the client
// reads a reset, never a clean EOF; the next connection goes through
// sshdial's own login.
func TestHandOverMasterKilled(t *testing.T) {
	f := newFixture(t, "LogLevel INFO")
	m := f.srv.StartMaster(t)
	waitSSHDLogins(t, f.srv, 1, "the master's login")
	source := testutil.Serve(t, "tcp", testutil.Flood).Addr().String()
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+source, "-L", "0:"+echo)...)
	conn, err := net.DialTimeout("tcp", c.addr("-L", 0), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	n, err := io.Copy(io.Discard, conn)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the master was killed: %v after %d more bytes, want a reset (nil is a clean EOF)", err, n)
	}
	conn2, err := net.DialTimeout("tcp", c.addr("-L", 1), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn2.SetDeadline(time.Now().Add(30 * time.Second))
	if err := testutil.RoundTrip(conn2, "after the master"); err != nil {
		t.Fatal(err)
	}
	waitSSHDLogins(t, f.srv, 2, "the fallback logs in once")
}

// Stopping sshdial with handed tunnels open: within the grace period they
// go on, and when it ends they are reset, and sshdial exits.
func TestHandOverGraceEnds(t *testing.T) {
	f := newFixture(t, "LogLevel INFO")
	m := f.srv.StartMaster(t)
	target := testutil.EchoServer(t, "tcp").Addr().String()
	c := launchCLI(t, true, f.args("-S", m.Sock, "--grace", "1s", "-L", "0:"+target)...)
	conn, err := net.DialTimeout("tcp", c.addr("-L", 0), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := testutil.RoundTrip(conn, "before"); err != nil {
		t.Fatal(err)
	}
	c.cancel() // as SIGINT
	if err := testutil.RoundTrip(conn, "during the grace period"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = io.Copy(io.Discard, conn)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read when the grace period ended: %v, want a reset", err)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Fatalf("the tunnel ended %v after the stop", el)
	}
	if code := c.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
