//go:build unix

package sshmux

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testproc"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// master is a real `ssh -M -N -S sock` connected to a throwaway sshd.
type master struct {
	srv  *opensshd.Server
	sock string
	proc *testproc.Process
	dir  string
}

// startSSHD starts sshd logging at INFO, so that its output has one
// "Accepted publickey" line per login.
func startSSHD(t *testing.T) *opensshd.Server {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		if os.Getenv(opensshd.RequireEnv) == "" {
			t.Skip("ssh not found: install openssh-client")
		}
		t.Fatalf("ssh not found (%s is set)", opensshd.RequireEnv)
	}
	return opensshd.Start(t, "LogLevel INFO")
}

// startMaster starts a master on srv and waits until it answers on its
// control socket. The test's cleanup kills it (it also dies with the test
// binary: testproc sets the parent-death signal).
func startMaster(t *testing.T, srv *opensshd.Server) *master {
	t.Helper()
	// A short directory: t.TempDir's path with a long test name would not
	// fit in sun_path.
	dir, err := os.MkdirTemp("", "sshmux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	block, err := ssh.MarshalPrivateKey(srv.ClientPrivateKey, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, srv.HostKey)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	m := &master{srv: srv, sock: filepath.Join(dir, "s"), dir: dir}
	m.proc = testproc.Start(t, testproc.Options{}, "ssh", "-M", "-N", "-S", m.sock,
		"-F", "/dev/null",
		"-o", "ControlPersist=no",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+kh,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "ServerAliveInterval=0",
		"-i", key, "-p", port, "-l", srv.User, host)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := Dial(ctx, m.sock)
		cancel()
		if err == nil {
			return m
		}
		select {
		case <-m.proc.Exited():
			t.Fatalf("ssh master exited: %v\n%s\nsshd:\n%s", m.proc.Wait(), m.proc.Output(), srv.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh master does not answer on %s: %v\n%s", m.sock, err, m.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *master) client(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, m.sock)
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() != m.proc.Pid() {
		t.Fatalf("alive check says PID %d, the master is %d", c.PID(), m.proc.Pid())
	}
	return c
}

// logins counts the logins sshd has logged.
func logins(srv *opensshd.Server) int {
	return strings.Count(srv.Stderr(), "Accepted publickey")
}

// target is a TCP server on 127.0.0.1 that runs handle for each connection.
type target struct {
	ln   net.Listener
	wg   sync.WaitGroup
	host string
	port int
}

func startTarget(t *testing.T, handle func(net.Conn)) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.wg.Add(1)
			go func() {
				defer tg.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		tg.wg.Wait()
	})
	return tg
}

func echo(c net.Conn) { io.Copy(c, c) }

func (tg *target) addr() string { return net.JoinHostPort(tg.host, strconv.Itoa(tg.port)) }

func open(t *testing.T, c *Client, tg *target) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := c.OpenStdioFwd(ctx, tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// roundTrip writes msg and reads it back.
func roundTrip(conn net.Conn, msg []byte) error {
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return errors.New("echo differs")
	}
	return nil
}
