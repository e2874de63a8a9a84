// Command sshdial-demo shows sshdial at work with nothing to set up: it
// starts an in-process SSH server (package sshtest) and an HTTP origin on
// 127.0.0.1, fetches a page from the origin through the SSH server with a
// plain net/http client, and shows that deadlines and Close behave as on a
// TCP connection.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/sshtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sshdial-demo:", err)
		os.Exit(1)
	}
}

func run() error {
	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	fmt.Println("SSH server (in-process):", sshServer.Addr())

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s, you reached %s through SSH\n", r.RemoteAddr, r.Host)
	}))
	defer origin.Close()
	fmt.Println("HTTP origin:", origin.URL)

	dialer := sshdial.New(sshServer.Client())

	// 1. An unchanged net/http client, but for its dial hook.
	transport := &http.Transport{DialContext: dialer.DialContext}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	resp, err := client.Get(origin.URL + "/demo")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Printf("GET %s/demo: %s\n  %s", origin.URL, resp.Status, body)

	// 2. A raw connection: its addresses and a read deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", origin.Listener.Addr().String())
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Println("conn RemoteAddr:", conn.RemoteAddr(), " LocalAddr:", conn.LocalAddr())
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	_, err = conn.Read(make([]byte, 1)) // the origin waits for a request
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return fmt.Errorf("expected a read timeout, got %v", err)
	}
	fmt.Printf("read deadline fired after %v: %v\n", time.Since(start).Round(10*time.Millisecond), err)

	// 3. Close wakes a blocked Read even when the SSH server stalls.
	sshServer.Stall()
	conn.SetReadDeadline(time.Time{})
	readErr := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	conn.Close()
	select {
	case err := <-readErr:
		fmt.Printf("SSH server stalled; Close woke the blocked Read in %v: %v\n", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		return errors.New("Close did not wake the blocked Read")
	}
	sshServer.Resume()

	// 4. A refused target, with the SSH server's reason.
	_, err = dialer.Dial("tcp", "127.0.0.1:1")
	fmt.Println("dial to a closed port:", err)
	fmt.Println("  errors.Is(err, sshdial.ErrConnectionFailed) =", errors.Is(err, sshdial.ErrConnectionFailed))
	return nil
}
