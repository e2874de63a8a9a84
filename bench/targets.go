package main

import (
	"bufio"
	"context"
	"strings"

	"encoding/binary"
	"fmt"
	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
	"io"
	"net"
	"os"
)

// The targets run in a child process, so that the CPU time measured for
// this process is the client side's alone.
//
//	source: reads an 8-byte big-endian count, sends that many bytes, closes.
//	sink:   reads to EOF, answers with the 8-byte count it read, closes.
//	echo:   echoes with a small buffer (10,000 idle tunnels hold one each).
func runTargets() {
	raiseFileLimit()
	source := listen()
	sink := listen()
	echoL := listen()
	go serveEach(source, func(c net.Conn) {
		var n uint64
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		buf := make([]byte, 256<<10)
		for n > 0 {
			k := min(n, uint64(len(buf)))
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	go serveEach(sink, func(c net.Conn) {
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		binary.Write(c, binary.BigEndian, uint64(n))
	})
	go serveEach(echoL, func(c net.Conn) {
		io.CopyBuffer(c, c, make([]byte, 512))
	})
	// An in-process SSH server for the many-tunnels figure: OpenSSH's sshd
	// slows down quadratically with thousands of channels.
	srv := sshtest.NewUnstartedServer()
	srv.Config.NoClientAuth = true
	// Its targets are in-memory echoes: 10,000 tunnels to a TCP target
	// would be 20,000 sockets in this process.
	srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
		ours, theirs := net.Pipe()
		go func() {
			defer theirs.Close()
			io.CopyBuffer(theirs, theirs, make([]byte, 512))
		}()
		return ours, nil
	}
	srv.Start()
	defer srv.Close()
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey())))
	fmt.Printf("%s %s %s %s %s\n", source.Addr(), sink.Addr(), echoL.Addr(), srv.Addr(), strings.ReplaceAll(hostKey, " ", "_"))
	// Run until the parent closes our stdin (or dies).
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
}

func listen() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return l
}

func serveEach(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}
