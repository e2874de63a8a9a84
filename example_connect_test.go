package sshdial_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/sshtest"
)

// Connect with a destination and the usual ~/.ssh files is what programs
// do; here the in-process sshtest server stands in for the SSH server, and
// WithClientConfig carries its test key and host key.
func ExampleConnect() {
	srv := sshtest.NewServer()
	defer srv.Close()
	target, _ := net.Listen("tcp", "127.0.0.1:0") // a service behind the server
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err == nil {
			io.WriteString(c, "hello from behind the server\n")
			c.Close()
		}
	}()

	d, err := sshdial.Connect(context.Background(), "ssh://"+srv.Addr(),
		sshdial.WithConfigFile(""), // read no ~/.ssh/config
		sshdial.WithClientConfig(srv.ClientConfig()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	conn, err := d.Dial("tcp", target.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	reply, _ := io.ReadAll(conn)
	fmt.Print(string(reply))
	fmt.Println("SSH connections:", d.Stats().SSHConnections)
	// Output:
	// hello from behind the server
	// SSH connections: 1
}

// DialClient makes the SSH connection as Connect would and hands over the
// *ssh.Client, for sessions or SFTP; here sshtest stands in for the server
// (it runs no commands), so the example only shows who logged in.
func ExampleDialClient() {
	srv := sshtest.NewServer()
	defer srv.Close()

	client, err := sshdial.DialClient(context.Background(), "ssh://"+srv.Addr(),
		sshdial.WithConfigFile(""), // read no ~/.ssh/config
		sshdial.WithClientConfig(srv.ClientConfig()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close() // the caller owns it: with jump hosts, this closes them too
	// A program would go on with client.NewSession(), or sftp.NewClient(client).
	fmt.Println("logged in as", client.User())
	// Output: logged in as sshtest
}
