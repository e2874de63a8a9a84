package sshdial_test

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
	"golang.org/x/crypto/ssh"
)

// An HTTP client whose connections go through an SSH server.
func Example() {
	// An SSH server and an HTTP origin, both on this machine for the
	// example. In real use the client comes from ssh.Dial and the origin is
	// a host the SSH server can reach.
	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from behind the SSH server")
	}))
	defer origin.Close()

	dialer := sshdial.New(sshServer.Client())
	transport := &http.Transport{DialContext: dialer.DialContext}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	resp, err := client.Get(origin.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, ": ", string(body))
	// Output: 200 OK: hello from behind the SSH server
}

// Deadlines work as on a TCP connection.
func ExampleConn_SetReadDeadline() {
	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	silent, _ := net.Listen("tcp", "127.0.0.1:0") // accepts, never writes
	defer silent.Close()

	conn, err := sshdial.New(sshServer.Client()).Dial("tcp", silent.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		fmt.Println("timed out")
	}
	// Output: timed out
}

// CloseWrite sends EOF, and the reply can still be read.
func ExampleConn_CloseWrite() {
	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	// A target that counts the bytes it gets until EOF, then answers.
	counter, _ := net.Listen("tcp", "127.0.0.1:0")
	defer counter.Close()
	go func() {
		c, err := counter.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "%d bytes", n)
	}()

	conn, err := sshdial.New(sshServer.Client()).Dial("tcp", counter.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	io.WriteString(conn, "some data")
	conn.(*sshdial.Conn).CloseWrite()
	reply, _ := io.ReadAll(conn)
	fmt.Println(string(reply))
	// Output: 9 bytes
}

// A refusal by the SSH server can be told apart with errors.Is.
func ExampleErrProhibited() {
	sshServer := sshtest.NewUnstartedServer()
	sshServer.Permit = func(network, address string) error {
		return fmt.Errorf("%s is off limits", address)
	}
	sshServer.Start()
	defer sshServer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := sshdial.New(sshServer.Client()).DialContext(ctx, "tcp", "db.internal:5432")
	fmt.Println(errors.Is(err, sshdial.ErrProhibited))
	fmt.Println(err)
	// Output:
	// true
	// dial tcp db.internal:5432: sshdial: the SSH server refused: administratively prohibited: db.internal:5432 is off limits
}

// HTTPClient is a ready client whose transport keeps http.DefaultTransport's
// settings.
func ExampleDialer_HTTPClient() {
	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "pong")
	}))
	defer origin.Close()

	client := sshdial.New(sshServer.Client()).HTTPClient()
	defer client.CloseIdleConnections()
	client.Timeout = 10 * time.Second
	resp, err := client.Get(origin.URL + "/ping")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: pong
}

// Parallel transfers spread over several SSH connections to one server.
func ExampleNewPool() {
	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer origin.Close()

	// The Pool makes its SSH connections itself, and closes them.
	pool := sshdial.NewPool(2, func(ctx context.Context) (*ssh.Client, error) {
		return sshdial.DialSSH(ctx, sshServer.Addr(), sshServer.ClientConfig())
	})
	defer pool.Close()
	transport := &http.Transport{DialContext: pool.DialContext}
	defer transport.CloseIdleConnections()

	resp, err := (&http.Client{Transport: transport}).Get(origin.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK ok
}

// Listen is `ssh -R`: the SSH server listens, and http.Serve answers what
// arrives there. Here the server is the in-process sshtest server, and the
// request is made on its side.
func ExampleDialer_Listen() {
	srv := sshtest.NewServer()
	defer srv.Close()
	d := sshdial.New(srv.Client())
	defer d.Close()

	l, err := d.Listen(context.Background(), "tcp", "127.0.0.1:0") // the server picks the port
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "served through the SSH server")
	}))

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
	// Output: served through the SSH server
}
