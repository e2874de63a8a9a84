// Command xfwd is the baseline for the sshdial command in bench/: `ssh -N
// -L` and `ssh -D` (SOCKS5 CONNECT only) written the plain way on
// x/crypto's ssh.Client, io.Copy each way per tunnel. It takes the flags the
// harness gives ssh (-N -i -o UserKnownHostsFile= -p -c -L -D, user@host)
// and ignores the others. It measures what a Go process on x/crypto costs
// before anything sshdial adds; it is not a tool: it has no keepalive, no
// reconnect, and it exits on errors.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func main() {
	args := os.Args[1:]
	var key, khf, port, cipher, dest string
	var Ls []string
	var D string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-V":
			fmt.Println("xfwd (x/crypto forwarder baseline)")
			return
		case "-N":
		case "-i":
			i++
			key = args[i]
		case "-p":
			i++
			port = args[i]
		case "-c":
			i++
			cipher = args[i]
		case "-o":
			i++
			if v, ok := strings.CutPrefix(args[i], "UserKnownHostsFile="); ok {
				khf = v
			}
		case "-L":
			i++
			Ls = append(Ls, args[i])
		case "-D":
			i++
			D = args[i]
		default:
			dest = args[i]
		}
	}
	user, host, _ := strings.Cut(dest, "@")
	pem, err := os.ReadFile(key)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		log.Fatal(err)
	}
	hk, err := knownhosts.New(khf)
	if err != nil {
		log.Fatal(err)
	}
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk}
	if cipher != "" {
		cfg.Ciphers = []string{cipher}
	}
	client, err := ssh.Dial("tcp", net.JoinHostPort(host, port), cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range Ls {
		parts := strings.Split(l, ":")
		ln, err := net.Listen("tcp", parts[0]+":"+parts[1])
		if err != nil {
			log.Fatal(err)
		}
		target := parts[2] + ":" + parts[3]
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					t, err := client.Dial("tcp", target)
					if err != nil {
						c.Close()
						return
					}
					pipe(c, t)
				}()
			}
		}()
	}
	if D != "" {
		ln, err := net.Listen("tcp", D)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go socks(client, c)
			}
		}()
	}
	client.Wait()
}

func pipe(c, t net.Conn) {
	go func() { io.Copy(t, c); t.(interface{ CloseWrite() error }).CloseWrite() }()
	io.Copy(c, t)
	c.Close()
	t.Close()
}

func socks(client *ssh.Client, c net.Conn) {
	br := bufio.NewReader(c)
	h := make([]byte, 2)
	io.ReadFull(br, h)
	m := make([]byte, h[1])
	io.ReadFull(br, m)
	c.Write([]byte{5, 0})
	req := make([]byte, 4)
	io.ReadFull(br, req)
	var host string
	switch req[3] {
	case 1:
		a := make([]byte, 4)
		io.ReadFull(br, a)
		host = net.IP(a).String()
	case 3:
		l, _ := br.ReadByte()
		a := make([]byte, l)
		io.ReadFull(br, a)
		host = string(a)
	case 4:
		a := make([]byte, 16)
		io.ReadFull(br, a)
		host = net.IP(a).String()
	}
	pb := make([]byte, 2)
	io.ReadFull(br, pb)
	t, err := client.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb)))))
	if err != nil {
		c.Write([]byte{5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
		c.Close()
		return
	}
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	go func() { io.Copy(t, br); t.(interface{ CloseWrite() error }).CloseWrite() }()
	io.Copy(c, t)
	c.Close()
	t.Close()
}
