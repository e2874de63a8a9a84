package sshtest_test

import (
	"fmt"
	"io"
	"net"

	"github.com/sshdial/sshdial/sshtest"
)

func ExampleNewServer() {
	srv := sshtest.NewServer()
	defer srv.Close()

	// A target for the SSH server to connect to.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err == nil {
			io.WriteString(c, "hello through the tunnel")
			c.Close()
		}
	}()

	// Client is a connected *ssh.Client, closed by srv.Close.
	conn, err := srv.Client().Dial("tcp", target.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	msg, _ := io.ReadAll(conn)
	fmt.Println(string(msg))
	// Output: hello through the tunnel
}

// GlobalRequests shows what a client sent outside any channel, such as its
// keepalives.
func ExampleServer_GlobalRequests() {
	srv := sshtest.NewServer()
	defer srv.Close()

	for range 2 {
		// OpenSSH's clients send this with ServerAliveInterval.
		srv.Client().SendRequest("keepalive@openssh.com", true, nil)
	}
	fmt.Println(srv.GlobalRequests("keepalive@openssh.com"))
	// Output: 2
}
