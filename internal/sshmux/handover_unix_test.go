//go:build unix

package sshmux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testutil"
)

// handed is a connection accepted here and handed over to the master, as
// the command does with -L: the test plays the client of it.
type handed struct {
	client net.Conn     // the test's end
	ours   *net.TCPConn // the accepted end, which the master reads and writes
	fw     *Forward
	done   chan error // Wait's result, once ours is closed as Forward says
}

// handOverConn accepts a TCP connection from a test client and hands it to
// the master for tg. When Wait returns, the accepted end is closed: with a
// reset when the master was lost.
func handOverConn(t *testing.T, c *Client, host string, port int) (*handed, error) {
	t.Helper()
	client, ours := testutil.TCPPair(t)
	h := &handed{client: client, ours: ours, done: make(chan error, 1)}
	rc, err := h.ours.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var herr error
	if err := rc.Control(func(fd uintptr) { h.fw, herr = c.HandOver(ctx, host, port, int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if herr != nil {
		h.ours.Close()
		return nil, herr
	}
	go func() {
		err := h.fw.Wait()
		if err != nil {
			h.ours.SetLinger(0)
		}
		h.ours.Close()
		h.done <- err
	}()
	t.Cleanup(func() {
		h.fw.Close()
		<-h.done
	})
	return h, nil
}

func (h *handed) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the forward did not end")
		return nil
	}
}

func TestHandOverEcho(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, echo)
	c := m.client(t)
	h, err := handOverConn(t, c, tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := roundTrip(h.client, bytes.Repeat([]byte{byte(i)}, 1000*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	// The data went by the master alone: nothing was read here.
	h.ours.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := h.ours.Read(make([]byte, 1)); n != 0 {
		t.Fatal("the accepted end had data left for this process")
	}
	if n := logins(srv); n != 1 {
		t.Fatalf("sshd logged %d logins, want the master's one", n)
	}
	// The client closes: the forward ends, cleanly.
	h.client.Close()
	if err := h.wait(t); err != nil {
		t.Fatalf("Wait after the client closed: %v", err)
	}
}

// The client's half-close reaches the target, whose answer comes back; the
// target's close reaches the client as a clean EOF once the forward ended.
func TestHandOverHalfClose(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		c.Write([]byte(fmt.Sprintf("got %d bytes", len(b))))
	})
	c := m.client(t)
	h, err := handOverConn(t, c, tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	h.client.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := h.client.Write(bytes.Repeat([]byte("a"), 300000)); err != nil {
		t.Fatal(err)
	}
	h.client.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(h.client)
	if err != nil || string(b) != "got 300000 bytes" {
		t.Fatalf("ReadAll after CloseWrite = %q, %v; want the answer and a clean EOF", b, err)
	}
	if err := h.wait(t); err != nil {
		t.Fatalf("Wait: %v", err)
	}

	// The target speaks first and closes: the client reads all of it
	// and EOF (the master holds two descriptors of the socket and closes
	// the last only when the forward is over; the EOF comes then).
	tg2 := startTarget(t, func(c net.Conn) { c.Write(bytes.Repeat([]byte("b"), 500000)) })
	h2, err := handOverConn(t, c, tg2.host, tg2.port)
	if err != nil {
		t.Fatal(err)
	}
	h2.client.SetDeadline(time.Now().Add(20 * time.Second))
	b, err = io.ReadAll(h2.client)
	if err != nil || len(b) != 500000 {
		t.Fatalf("ReadAll = %d bytes, %v; want 500000 and a clean EOF", len(b), err)
	}
	if err := h2.wait(t); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// A master killed in the middle of a download: Wait says lost, and the
// client reads a reset, never a clean EOF.
func TestHandOverMasterKilled(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, testutil.Flood)
	h, err := handOverConn(t, m.client(t), tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	h.client.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(h.client, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	if err := h.wait(t); !errors.Is(err, ErrMasterLost) {
		t.Fatalf("Wait after the master was killed: %v, want ErrMasterLost", err)
	}
	n, err := io.Copy(io.Discard, h.client)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after the master was killed: %v after %d bytes, want a reset", err, n)
	}
}

// Close ends the forward at once: the target reads EOF, and the client a
// reset once the caller closed its end with SO_LINGER 0.
func TestHandOverClose(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	targetDone := make(chan error, 1)
	tg := startTarget(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c)
		targetDone <- err
	})
	h, err := handOverConn(t, m.client(t), tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := h.fw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.fw.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if err := h.wait(t); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Wait after Close: %v, want net.ErrClosed", err)
	}
	select {
	case err := <-targetDone:
		if err != nil {
			t.Fatalf("target: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the target's connection stayed open after Close")
	}
}

// A target that refuses: HandOver fails as OpenStdioFwd does, and leaves
// the descriptor to the caller.
func TestHandOverRefused(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	tg := startTarget(t, echo)
	tg.ln.Close()
	_, err := handOverConn(t, m.client(t), tg.host, tg.port)
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("HandOver to a closed port: %v, want a *RefusedError", err)
	}
	for _, bad := range []struct {
		host string
		port int
	}{{"", 80}, {"h", 0}, {"h", 65536}, {"h", -2}, {"a\x00b", 80}} {
		if _, err := m.client(t).HandOver(context.Background(), bad.host, bad.port, 0); err == nil {
			t.Errorf("HandOver(%q, %d) succeeded", bad.host, bad.port)
		}
	}
}

// A master killed and replaced by another on the same control path (as
// ControlPersist does on the next login): the forward was lost all the
// same, and Wait says so, though a master answers there again.
func TestHandOverMasterReplaced(t *testing.T) {
	srv := startSSHD(t)
	m1 := startMaster(t, srv)
	path := filepath.Join(t.TempDir(), "cm")
	if err := os.Symlink(m1.sock, path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tg := startTarget(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.Copy(io.Discard, c)
	})
	h, err := handOverConn(t, c, tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	m2 := startMaster(t, srv)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(m2.sock, path); err != nil {
		t.Fatal(err)
	}
	m1.Kill()
	if err := h.wait(t); !errors.Is(err, ErrMasterLost) {
		t.Fatalf("Wait after the master was replaced: %v, want ErrMasterLost", err)
	}
}

// A master told `ssh -O stop` stops listening and lets its forwards
// finish: while another forward keeps it alive, the end of a handed-over
// one is clean (no answer on the path, but the process lives). The last
// forward's end makes it exit, which cannot be told from a death: lost.
func TestHandOverMasterStopped(t *testing.T) {
	srv := startSSHD(t)
	m := startMaster(t, srv)
	gate := make(chan struct{})
	tg := startTarget(t, func(c net.Conn) {
		<-gate
		c.Write(bytes.Repeat([]byte("d"), 200000))
	})
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	idle := startTarget(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	c := m.client(t)
	other, err := handOverConn(t, c, idle.host, idle.port) // keeps the master alive
	if err != nil {
		t.Fatal(err)
	}
	h, err := handOverConn(t, c, tg.host, tg.port)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh", "-F", "/dev/null", "-S", m.sock, "-O", "stop", "x").CombinedOutput(); err != nil {
		t.Fatalf("ssh -O stop: %v: %s", err, out)
	}
	close(gate)
	h.client.SetDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(h.client)
	if err != nil || len(b) != 200000 {
		t.Fatalf("download through a stopped master: %d bytes, %v; want all and a clean EOF", len(b), err)
	}
	if err := h.wait(t); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	// The last one: the master exits with it.
	other.client.(*net.TCPConn).CloseWrite()
	other.client.SetDeadline(time.Now().Add(20 * time.Second))
	io.Copy(io.Discard, other.client)
	if err := other.wait(t); !errors.Is(err, ErrMasterLost) {
		t.Fatalf("Wait of the forward whose end made the master exit: %v, want ErrMasterLost", err)
	}
}
