package proxysrv

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// webTarget is an httptest server that answers with the Host it was asked
// for, and a testDialer that maps name.test:80 to it.
func webTarget(t *testing.T) (*httptest.Server, *testDialer) {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.Host)
	}))
	t.Cleanup(web.Close)
	d := &testDialer{}
	d.route("name.test:80", web.Listener.Addr().String())
	d.route("[2001:db8::1]:80", web.Listener.Addr().String())
	return web, d
}

// curl runs curl with args and returns its output.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl (apt-get install -y curl)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-sS", "--max-time", "10"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"} // no *_proxy variables
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCurl(t *testing.T) {
	web, d := webTarget(t)
	webAddr := web.Listener.Addr().String()
	var events []TunnelEvent
	done := make(chan struct{}, 10)
	s := &Server{Dial: d.dial, OnTunnel: func(ev TunnelEvent) {
		if !ev.Open {
			events = append(events, ev)
			done <- struct{}{}
		}
	}}
	socks := startProxy(t, s, "socks")
	h := startProxy(t, s, "http")
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		asked string
	}{
		// The name reaches Dial unresolved: name.test resolves nowhere.
		{"socks5-hostname", []string{"--socks5-hostname", socks.addr, "http://name.test/"}, "hello name.test", "tcp name.test:80"},
		{"socks4a", []string{"--socks4a", socks.addr, "http://name.test/"}, "hello name.test", "tcp name.test:80"},
		{"socks5 (resolved by curl)", []string{"--socks5", socks.addr, "http://" + webAddr + "/"}, "hello " + webAddr, "tcp " + webAddr},
		{"socks4 (resolved by curl)", []string{"--socks4", socks.addr, "http://" + webAddr + "/"}, "hello " + webAddr, "tcp " + webAddr},
		{"CONNECT", []string{"--proxytunnel", "-x", "http://" + h.addr, "http://name.test/"}, "hello name.test", "tcp name.test:80"},
		// curl sends an IPv6 address in brackets, without a zone, and
		// the port in canonical form: CONNECT [2001:db8::1]:80.
		{"CONNECT IPv6", []string{"--proxytunnel", "-x", "http://" + h.addr, "http://[2001:db8::1]:080/"}, "hello [2001:db8::1]", "tcp [2001:db8::1]:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(d.askedFor())
			out, err := curl(t, tc.args...)
			if err != nil || out != tc.want {
				t.Fatalf("curl %s: %q, %v; want %q", strings.Join(tc.args, " "), out, err, tc.want)
			}
			if asked := d.askedFor()[before:]; !slices.Equal(asked, []string{tc.asked}) {
				t.Errorf("Dial was asked for %q, want %q", asked, tc.asked)
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the tunnel did not end after curl exited")
			}
			if ev := events[len(events)-1]; ev.Sent == 0 || ev.Received == 0 || ev.Err != nil {
				t.Errorf("end of tunnel: %+v", ev)
			}
		})
	}
	// A refusal reaches curl as such: curl names SOCKS5 reply 5 only by
	// its number.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closed.Close()
	d.route("gone.test:80", closed.Addr().String())
	if out, err := curl(t, "--socks5-hostname", socks.addr, "http://gone.test/"); err == nil || !strings.Contains(out, "(5)") {
		t.Errorf("curl through SOCKS5 to a closed port: %q, %v; want reply 5, connection refused", out, err)
	}
	if out, err := curl(t, "--proxytunnel", "-x", "http://"+h.addr, "http://gone.test/"); err == nil || !strings.Contains(out, "502") {
		t.Errorf("curl through CONNECT to a closed port: %q, %v; want 502", out, err)
	}
}

func TestXNetProxy(t *testing.T) {
	_, d := webTarget(t)
	p := startProxy(t, &Server{Dial: d.dial}, "socks")
	dialer, err := xproxy.SOCKS5("tcp", p.addr, nil, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: dialer.(xproxy.ContextDialer).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://name.test/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello name.test" {
		t.Errorf("got %q", b)
	}
	if got := d.askedFor(); !slices.Equal(got, []string{"tcp name.test:80"}) {
		t.Errorf("Dial was asked for %q", got)
	}

	// Its error names the reply code.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closed.Close()
	d.route("gone.test:80", closed.Addr().String())
	if c, err := dialer.Dial("tcp", "gone.test:80"); err == nil {
		c.Close()
		t.Error("dialed a closed port")
	} else if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dial a closed port: %v; want connection refused", err)
	}
}
