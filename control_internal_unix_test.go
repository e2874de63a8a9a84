//go:build unix

package sshdial

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/sshmux"
	"github.com/sshdial/sshdial/internal/testutil"
)

// A master that accepts and never answers holds a dial at most
// masterProbeTimeout.
func TestStalledMasterBounded(t *testing.T) {
	defer func(d time.Duration) { masterProbeTimeout = d }(masterProbeTimeout)
	masterProbeTimeout = 200 * time.Millisecond
	m := startFakeMaster(t)
	m.silent.Store(true)
	d := New(nil, WithControl(m.path, ControlRequired))
	defer d.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := d.Dial("tcp", "127.0.0.1:1")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoControlMaster) {
			t.Fatalf("Dial through a silent master: %v", err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("Dial took %v", el)
		}
	case <-time.After(10 * time.Second):
		// The fake master's connections close when the test ends:
		// the Dial returns then.
		t.Fatal("Dial through a silent master still waits after 10 s")
	}
}

// fakeMaster is a control socket whose master answers hellos and alive
// checks until silent is set; then it accepts and says nothing.
type fakeMaster struct {
	path     string
	silent   atomic.Bool
	accepted atomic.Int64
}

func startFakeMaster(t *testing.T) *fakeMaster {
	t.Helper()
	m := &fakeMaster{}
	l := testutil.Serve(t, "unix", func(c net.Conn) {
		m.accepted.Add(1)
		if m.silent.Load() {
			io.Copy(io.Discard, c) // never answers
			return
		}
		m.answer(c)
	})
	m.path = l.Addr().String()
	return m
}

// answer sends the hello and answers alive checks (PID 4242).
func (m *fakeMaster) answer(c net.Conn) {
	packet := func(words ...uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(4*len(words)))
		for _, w := range words {
			b = binary.BigEndian.AppendUint32(b, w)
		}
		return b
	}
	c.Write(packet(1, 4)) // MUX_MSG_HELLO, version 4
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if binary.BigEndian.Uint32(body) == 0x10000004 { // MUX_C_ALIVE_CHECK
			c.Write(packet(0x80000005, binary.BigEndian.Uint32(body[4:]), 4242))
		}
	}
}

// A master that stops answering is left alone for masterSilentPause once
// it was found silent: the dials meanwhile fail at once under
// ControlRequired (and fall back under ControlFallback) without asking it,
// and it is asked again after the pause. A master found before it stopped
// holds a dial no longer than sshmux.HelloTimeout.
func TestSilentMasterRemembered(t *testing.T) {
	defer func(p, s, h time.Duration) {
		masterProbeTimeout, masterSilentPause, sshmux.HelloTimeout = p, s, h
	}(masterProbeTimeout, masterSilentPause, sshmux.HelloTimeout)
	masterProbeTimeout, masterSilentPause, sshmux.HelloTimeout = 5*time.Second, time.Second, 300*time.Millisecond

	m := startFakeMaster(t)
	logs := &testutil.SyncBuffer{}
	d := New(nil, WithControl(m.path, ControlRequired), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	defer d.Close()
	ctx := context.Background()
	client, err := d.control.master(ctx, d)
	if err != nil || client.PID() != 4242 {
		t.Fatalf("the fake master: %v", err)
	}

	m.silent.Store(true)
	start := time.Now()
	_, err = d.Dial("tcp", "127.0.0.1:1")
	if !errors.Is(err, ErrNoControlMaster) || !errors.Is(err, sshmux.ErrMasterSilent) {
		t.Fatalf("Dial through a master gone silent: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("the first Dial took %v, want about HelloTimeout", el)
	}
	if !strings.Contains(logs.String(), "does not answer") {
		t.Errorf("not logged:\n%s", logs)
	}
	asked := m.accepted.Load()
	for i := 0; i < 5; i++ {
		start := time.Now()
		_, err = d.Dial("tcp", "127.0.0.1:1")
		if !errors.Is(err, sshmux.ErrMasterSilent) || time.Since(start) > 100*time.Millisecond {
			t.Fatalf("Dial during the pause: %v after %v", err, time.Since(start))
		}
	}
	if n := m.accepted.Load(); n != asked {
		t.Fatalf("the silent master was asked %d more times during the pause", n-asked)
	}

	// After the pause it is asked again, and found when it answers.
	m.silent.Store(false)
	time.Sleep(masterSilentPause + 100*time.Millisecond)
	if client, err := d.control.master(ctx, d); err != nil || client.PID() != 4242 {
		t.Fatalf("after the pause: %v", err)
	}
	if m.accepted.Load() == asked {
		t.Fatal("not asked again after the pause")
	}
}

// Closing a connection while it is being handed over to a master that has
// not answered yet returns at once: the hand-over holds a duplicate of the
// descriptor, not the connection (whose Close would wait for it).
func TestHandOverDoesNotHoldConn(t *testing.T) {
	m := startFakeMaster(t) // answers hellos and alive checks, never a forward
	d := New(nil, WithControl(m.path, ControlRequired))
	defer d.Close()
	_, accepted := testutil.TCPPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := d.handOver(ctx, accepted, "tcp", "127.0.0.1:1", nil)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the request is with the master
	el := testutil.Within(t, 3*time.Second, "Close during a hand-over", func() { accepted.Close() })
	t.Logf("Close took %v", el)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("handOver: %v, want the context's error", err)
	}
}
