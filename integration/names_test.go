package integration

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/sshtest"
	"golang.org/x/crypto/ssh"
)

// The consumers dial names that resolve only behind the SSH server, as
// db.internal does behind a real bastion: a client that looks a name up
// itself fails, so a test that passes shows that the name went through the
// SSH channel unresolved.
//
// Every name maps to 127.0.0.1, where the real servers listen. sshtest maps
// them in its DialTarget and refuses everything else, IP addresses
// included. OpenSSH's sshd runs in a mount namespace of its own, with an
// /etc/hosts that lists them: only sshd and its children see that file.
var serverOnlyNames = []string{"db.internal", "cache.internal", "api.internal", "queue.internal", "web.internal"}

// behind returns addr (127.0.0.1:port) with its host replaced by name.
func behind(name, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return net.JoinHostPort(name, port)
}

var checkNamesOnce sync.Once
var checkNamesErr error

// requireUnresolvable fails the test if this process can resolve any of
// serverOnlyNames: the tests would then prove nothing.
func requireUnresolvable(t testing.TB) {
	t.Helper()
	checkNamesOnce.Do(func() {
		for _, name := range serverOnlyNames {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, name)
			cancel()
			if err == nil {
				checkNamesErr = fmt.Errorf("the test client resolves %s to %v: the tests need a name that resolves only behind the SSH server", name, addrs)
				return
			}
		}
	})
	if checkNamesErr != nil {
		t.Fatal(checkNamesErr)
	}
}

// namingServer returns an sshtest server that reaches serverOnlyNames (on
// any port) at 127.0.0.1 and refuses every other TCP target; unix sockets
// it dials as they are. dialed returns the TCP targets the server was
// asked for.
func namingServer(t testing.TB) (srv *sshtest.Server, dialed func() []string) {
	var mu sync.Mutex
	var asked []string
	srv = sshtest.NewUnstartedServer()
	srv.DialTarget = func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		if network == "unix" {
			return d.DialContext(ctx, network, address)
		}
		mu.Lock()
		asked = append(asked, address)
		mu.Unlock()
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(serverOnlyNames, host) {
			return nil, fmt.Errorf("%s: no such host behind this server (only %v)", host, serverOnlyNames)
		}
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
}

// startNamedSSHD starts OpenSSH's sshd with an /etc/hosts of its own that
// maps serverOnlyNames to 127.0.0.1 (opensshd.Options.Hosts: a mount
// namespace), stopped when the test ends. It needs root: without it the
// test is skipped, or fails when SSHDIAL_REQUIRE_SSHD is set.
func startNamedSSHD(t testing.TB) *opensshd.Server {
	t.Helper()
	requireUnresolvable(t)
	if os.Geteuid() != 0 {
		if os.Getenv(opensshd.RequireEnv) != "" {
			t.Fatalf("an sshd with its own /etc/hosts needs root, for the mount namespace (%s is set)", opensshd.RequireEnv)
		}
		t.Skip("an sshd with its own /etc/hosts needs root, for the mount namespace")
	}
	hosts := "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + strings.Join(serverOnlyNames, " ") + "\n"
	srv := opensshd.StartWith(t, opensshd.Options{Hosts: hosts})
	resumeOnCleanup(t, srv) // in case a test left it stopped
	return srv
}

// keyPEM returns srv's client key in OpenSSH's format, for key files.
func keyPEM(t testing.TB, srv *opensshd.Server) []byte {
	block, err := ssh.MarshalPrivateKey(srv.ClientPrivateKey, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// TestServerOnlyNames checks the fixture itself: the names resolve behind
// both servers and nowhere else.
func TestServerOnlyNames(t *testing.T) {
	requireUnresolvable(t)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	srv, dialed := namingServer(t)
	c, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sshd := startNamedSSHD(t)
	for name, client := range map[string]*ssh.Client{"sshtest": c, "openssh": sshd.Dial(t)} {
		conn, err := client.Dial("tcp", behind("db.internal", target.Addr().String()))
		if err != nil {
			t.Fatalf("%s: dialing db.internal: %v", name, err)
		}
		buf := make([]byte, 2)
		_, err = conn.Read(buf)
		conn.Close()
		if err != nil || string(buf) != "hi" {
			t.Fatalf("%s: read %q, %v", name, buf, err)
		}
		if _, err := client.Dial("tcp", behind("nowhere.invalid", target.Addr().String())); err == nil {
			t.Fatalf("%s resolves nowhere.invalid", name)
		}
	}
	if _, err := c.Dial("tcp", target.Addr().String()); err == nil {
		t.Fatal("sshtest reaches an IP address: it must refuse everything but serverOnlyNames")
	}
	t.Logf("sshtest was asked for %v", dialed())
}
