package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/net/proxy"
)

// runDemo is `sshdial demo`: the forwards of a real command line, on an
// in-process SSH server and HTTP origins, all on loopback.
func runDemo(ctx context.Context, stdout, stderr io.Writer) int {
	if err := demo(ctx, stdout); err != nil {
		fmt.Fprintln(stderr, "sshdial demo:", err)
		return exitError
	}
	return exitOK
}

func demo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	sshServer := sshtest.NewServer()
	defer sshServer.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the origin: %s %s, Host %s", r.Method, r.URL.Path, r.Host)
	}))
	defer origin.Close()
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over TLS: %s %s", r.Method, r.URL.Path)
	}))
	defer tlsOrigin.Close()
	originAddr := origin.Listener.Addr().String()
	_, originPort, _ := net.SplitHostPort(originAddr)

	fmt.Fprintf(out, "An SSH server (package sshtest) on %s, an HTTP origin on %s, an HTTPS origin on %s.\n",
		sshServer.Addr(), originAddr, tlsOrigin.Listener.Addr())
	args := []string{"-N",
		"-L", "127.0.0.1:0:" + originAddr,
		"-D", "127.0.0.1:0",
		"--http-proxy", "127.0.0.1:0",
		"-R", "127.0.0.1:0:" + originAddr,
		sshtest.User + "@" + sshServer.Addr()}
	fmt.Fprintf(out, "\n$ sshdial %s\n", strings.Join(args, " "))
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	// The embedded server's client key exists only in memory: the demo
	// hands its SSH client to the Dialer (sshdial.New) where the command
	// calls sshdial.Connect; everything after is the command's own code.
	d := sshdial.New(sshServer.Client(), sshdial.WithLogger(slog.New(slog.DiscardHandler)))
	s := newSession(o, d, slog.New(slog.DiscardHandler))
	if err := s.start(ctx); err != nil {
		d.Close()
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			s.shutdown(nil)
		}
	}()
	addr := func(kind string) string {
		for _, f := range s.forwards {
			if f.kind == kind {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.addr
			}
		}
		return ""
	}
	show := func(what string, resp *http.Response, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(out, "  %s\n    -> %s: %q\n", what, resp.Status, body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", what, resp.Status)
		}
		return nil
	}
	get := func(client *http.Client, u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		return client.Do(req)
	}
	newClient := func(t *http.Transport) *http.Client {
		t.DisableKeepAlives = true
		return &http.Client{Transport: t, Timeout: 10 * time.Second}
	}

	fmt.Fprintln(out, "\n-L: a local port, connected through the SSH server to the origin")
	l := addr("-L")
	resp, err := get(newClient(&http.Transport{}), "http://"+l+"/via-L")
	if err := show("GET http://"+l+"/via-L", resp, err); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n-D: a SOCKS5 proxy; the name \"localhost\" is resolved by the SSH server, not here")
	socks, err := proxy.SOCKS5("tcp", addr("-D"), nil, &net.Dialer{})
	if err != nil {
		return err
	}
	u := "http://localhost:" + originPort + "/via-D"
	resp, err = get(newClient(&http.Transport{DialContext: socks.(proxy.ContextDialer).DialContext}), u)
	if err := show("GET "+u+" (socks5h://"+addr("-D")+")", resp, err); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n--http-proxy: an HTTP CONNECT proxy, as HTTPS_PROXY or curl -x use it; TLS goes end to end")
	proxyURL := &url.URL{Scheme: "http", Host: addr("--http-proxy")}
	tlsConfig := tlsOrigin.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	u = tlsOrigin.URL + "/via-http-proxy"
	resp, err = get(newClient(&http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: tlsConfig}), u)
	if err := show("GET "+u+" (proxy "+proxyURL.String()+")", resp, err); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n-R: the SSH server listens; a connection made on its side reaches the origin from here")
	r := addr("-R")
	resp, err = get(newClient(&http.Transport{}), "http://"+r+"/via-R")
	if err := show("GET http://"+r+"/via-R (on the server's side)", resp, err); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n-L to a closed port: the client's connection is closed, the failure logged and counted")
	o2, err := parseArgs([]string{"-L", "127.0.0.1:0:127.0.0.1:1", "demo"})
	if err != nil {
		return err
	}
	closed := &forward{kind: "-L", text: o2.local[0].text, spec: o2.local[0]}
	s.forwards = append(s.forwards, closed)
	if err := s.startForward(ctx, closed); err != nil {
		return err
	}
	c, err := net.Dial("tcp", closed.addr)
	if err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	c.Close()
	fmt.Fprintf(out, "  read from %s: %v\n", closed.addr, err)
	if !errors.Is(err, io.EOF) && !isReset(err) {
		return fmt.Errorf("want EOF or a reset, got %v", err)
	}

	fmt.Fprintln(out, "\nThe status summary (SIGUSR1, or --status 30s):")
	s.writeStatus(indent{out})

	stopped = true
	start := time.Now()
	s.shutdown(nil)
	fmt.Fprintf(out, "\nShut down in %v: listeners closed, tunnels done, SSH connection closed.\n", time.Since(start).Round(100*time.Microsecond))
	fmt.Fprintln(out, "Against a real server: sshdial -N -L 5432:db.internal:5432 -D 1080 --http-proxy 3128 you@bastion")
	return nil
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// indent writes with two spaces before each line.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimSuffix(string(p), "\n")
	_, err := io.WriteString(i.w, "  "+strings.ReplaceAll(s, "\n", "\n  ")+"\n")
	return len(p), err
}
