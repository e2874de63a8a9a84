//go:build unix

package sshdial

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A master that accepts and never answers holds a dial at most
// masterProbeTimeout.
func TestStalledMasterBounded(t *testing.T) {
	defer func(d time.Duration) { masterProbeTimeout = d }(masterProbeTimeout)
	masterProbeTimeout = 200 * time.Millisecond
	dir, err := os.MkdirTemp("", "sshdial")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- c // never answers
		}
	}()
	defer func() {
		l.Close()
		for c := range held {
			c.Close()
		}
	}()
	d := New(nil, WithControl(path, ControlRequired))
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
		l.Close()
		for c := range held {
			c.Close() // the Dial returns
		}
		<-done
		t.Fatal("Dial through a silent master still waits after 10 s")
	}
}
