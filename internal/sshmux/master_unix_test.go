//go:build unix

package sshmux

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
)

// master is a real `ssh -M -N -S sock` connected to a throwaway sshd.
type master struct {
	*opensshd.Master
	sock string
}

// startSSHD starts sshd logging at INFO, so that its output has one
// "Accepted publickey" line per login.
func startSSHD(t *testing.T) *opensshd.Server {
	t.Helper()
	return opensshd.Start(t, "LogLevel INFO")
}

// startMaster starts a master on srv; it answers on its control socket
// once this returns. The test's cleanup kills it (it also dies with the
// test binary: testproc sets the parent-death signal).
func startMaster(t *testing.T, srv *opensshd.Server) *master {
	t.Helper()
	m := srv.StartMaster(t)
	return &master{Master: m, sock: m.Sock}
}

func (m *master) client(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, m.sock)
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() != m.Pid() {
		t.Fatalf("alive check says PID %d, the master is %d", c.PID(), m.Pid())
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
