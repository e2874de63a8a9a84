package main

// A stand-in for github.com/sshdial/sshdial/internal/proxysrv, with its
// API, until that package lands on this branch: then this file is deleted
// and proxy.go's type aliases point at proxysrv. It does SOCKS5 CONNECT
// (no authentication; IPv4, IPv6 and domain names, which the dial function
// passes on unresolved), SOCKS4 and 4a CONNECT, and HTTP CONNECT.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type shimDialFunc func(ctx context.Context, network, address string) (net.Conn, error)

type shimTunnelEvent struct {
	Proto, Target  string
	Open           bool
	Sent, Received int64
	Err            error
}

type shimServer struct {
	Dial                          shimDialFunc
	Logger                        *slog.Logger
	HandshakeTimeout, DialTimeout time.Duration
	OnTunnel                      func(ev shimTunnelEvent)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	open      atomic.Int64
	wg        sync.WaitGroup
	shut      bool
}

func (s *shimServer) ServeSOCKS(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.socks)
}

func (s *shimServer) ServeHTTPConnect(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.httpConnect)
}

func (s *shimServer) Open() int { return int(s.open.Load()) }

// Shutdown closes the listeners, then waits for open tunnels until ctx
// ends, and then closes them.
func (s *shimServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shut = true
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func (s *shimServer) serve(ctx context.Context, l net.Listener, handle func(ctx context.Context, c net.Conn)) error {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.mu.Lock()
			delete(s.listeners, l)
			s.mu.Unlock()
			return err
		}
		s.mu.Lock()
		if s.shut {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			handle(ctx, c)
		}()
	}
}

func (s *shimServer) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *shimServer) handshakeDeadline(c net.Conn) {
	t := s.HandshakeTimeout
	if t <= 0 {
		t = 10 * time.Second
	}
	c.SetDeadline(time.Now().Add(t))
}

func (s *shimServer) dial(ctx context.Context, target string) (net.Conn, error) {
	t := s.DialTimeout
	if t <= 0 {
		t = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	return s.Dial(ctx, "tcp", target)
}

// socks serves one SOCKS4, 4a or 5 client.
func (s *shimServer) socks(ctx context.Context, c net.Conn) {
	s.handshakeDeadline(c)
	br := bufio.NewReader(c)
	ver, err := br.ReadByte()
	if err != nil {
		return
	}
	var target string
	var reply func(ok bool)
	switch ver {
	case 5:
		n, err := br.ReadByte()
		if err != nil {
			return
		}
		methods := make([]byte, n)
		if _, err := io.ReadFull(br, methods); err != nil {
			return
		}
		noAuth := false
		for _, m := range methods {
			noAuth = noAuth || m == 0
		}
		if !noAuth {
			c.Write([]byte{5, 0xff})
			return
		}
		c.Write([]byte{5, 0})
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(br, hdr); err != nil || hdr[0] != 5 {
			return
		}
		var host string
		switch hdr[3] {
		case 1, 4:
			ip := make([]byte, map[byte]int{1: 4, 4: 16}[hdr[3]])
			if _, err := io.ReadFull(br, ip); err != nil {
				return
			}
			host = net.IP(ip).String()
		case 3:
			l, err := br.ReadByte()
			if err != nil {
				return
			}
			name := make([]byte, l)
			if _, err := io.ReadFull(br, name); err != nil {
				return
			}
			host = string(name)
		default:
			c.Write([]byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		pb := make([]byte, 2)
		if _, err := io.ReadFull(br, pb); err != nil {
			return
		}
		if hdr[1] != 1 {
			c.Write([]byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		target = net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb))))
		reply = func(ok bool) {
			code := byte(0)
			if !ok {
				code = 5
			}
			c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0})
		}
	case 4:
		hdr := make([]byte, 7)
		if _, err := io.ReadFull(br, hdr); err != nil || hdr[0] != 1 {
			return
		}
		if _, err := br.ReadString(0); err != nil { // user id
			return
		}
		port := binary.BigEndian.Uint16(hdr[1:3])
		ip := net.IP(hdr[3:7])
		host := ip.String()
		if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 { // 4a
			name, err := br.ReadString(0)
			if err != nil {
				return
			}
			host = name[:len(name)-1]
		}
		target = net.JoinHostPort(host, strconv.Itoa(int(port)))
		reply = func(ok bool) {
			code := byte(90)
			if !ok {
				code = 91
			}
			c.Write([]byte{0, code, 0, 0, 0, 0, 0, 0})
		}
	default:
		return
	}
	proto := fmt.Sprintf("socks%d", ver)
	up, err := s.dial(ctx, target)
	if err != nil {
		reply(false)
		s.log().Debug("tunnel refused", "proto", proto, "target", target, "err", err)
		s.event(shimTunnelEvent{Proto: proto, Target: target, Err: err})
		return
	}
	reply(true)
	c.SetDeadline(time.Time{})
	s.relay(proto, target, c, br, up)
}

// httpConnect serves one HTTP CONNECT client.
func (s *shimServer) httpConnect(ctx context.Context, c net.Conn) {
	s.handshakeDeadline(c)
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	target := req.Host
	up, err := s.dial(ctx, target)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		s.event(shimTunnelEvent{Proto: "http", Target: target, Err: err})
		return
	}
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	c.SetDeadline(time.Time{})
	s.relay("http", target, c, br, up)
}

func (s *shimServer) event(ev shimTunnelEvent) {
	if s.OnTunnel != nil {
		s.OnTunnel(ev)
	}
}

func (s *shimServer) relay(proto, target string, c net.Conn, br *bufio.Reader, up net.Conn) {
	s.open.Add(1)
	defer s.open.Add(-1)
	s.mu.Lock()
	s.conns[up] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, up)
		s.mu.Unlock()
	}()
	s.event(shimTunnelEvent{Proto: proto, Target: target, Open: true})
	sent, received, err := pipe(c, br, up)
	s.event(shimTunnelEvent{Proto: proto, Target: target, Sent: sent, Received: received, Err: err})
}
