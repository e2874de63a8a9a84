package sshdial_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/nettest"
)

func TestMain(m *testing.M) {
	testutil.RelayMain(os.Args) // ProxyCommand tests run this binary as a relay
	goleak.VerifyTestMain(m)
}

// newSSHTest starts an sshtest server and connects a client to it; both are
// closed when the test ends.
func newSSHTest(t testing.TB) (*sshtest.Server, *ssh.Client) {
	t.Helper()
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	client, err := srv.Dial()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return srv, client
}

// newOpenSSH starts a throwaway OpenSSH sshd and connects a client to it.
func newOpenSSH(t testing.TB, extraConfig ...string) (*opensshd.Server, *ssh.Client) {
	t.Helper()
	srv := opensshd.Start(t, extraConfig...)
	return srv, srv.Dial(t)
}

// peer is an SSH server kind the tests run against.
type peer struct {
	name   string
	client func(t testing.TB) *ssh.Client
}

var peers = []peer{
	{"sshtest", func(t testing.TB) *ssh.Client { _, c := newSSHTest(t); return c }},
	{"openssh", func(t testing.TB) *ssh.Client { _, c := newOpenSSH(t); return c }},
}

// forEachPeer runs f as a subtest against each server kind.
func forEachPeer(t *testing.T, f func(t *testing.T, client *ssh.Client)) {
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) { f(t, p.client(t)) })
	}
}

// serve and echo are testutil.Serve and testutil.Echo under the names that
// bench_test.go uses.
func serve(t testing.TB, network string, handle func(net.Conn)) net.Listener {
	t.Helper()
	return testutil.Serve(t, network, handle)
}

func echo(c net.Conn) { testutil.Echo(c) }

// pipeMaker returns a nettest.MakePipe whose first end is a Conn dialed
// through client and whose second end is the connection the target accepted.
// nettest calls it on the goroutines of its subtests, so it reports errors
// instead of failing a test.
func pipeMaker(client *ssh.Client, network string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		addr := "127.0.0.1:0"
		if network == "unix" {
			dir, err := os.MkdirTemp("", "sshdial")
			if err != nil {
				return nil, nil, nil, err
			}
			defer os.RemoveAll(dir) // the listener is closed first
			addr = filepath.Join(dir, "s")
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, nil, nil, err
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		c1, err = sshdial.New(client).Dial(network, l.Addr().String())
		if err != nil {
			l.Close()
			if c := <-accepted; c != nil {
				c.Close()
			}
			return nil, nil, nil, err
		}
		c2 = <-accepted
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("target accepted nothing")
		}
		stop = func() {
			c1.Close()
			c2.Close()
		}
		return c1, c2, stop, nil
	}
}

// requireEchoThrough dials an echo target through d, checks a round trip
// and closes the Conn.
func requireEchoThrough(t *testing.T, d *sshdial.Dialer) {
	t.Helper()
	c, err := d.Dial("tcp", serve(t, "tcp", echo).Addr().String())
	require.NoError(t, err)
	require.NoError(t, testutil.RoundTrip(c, "ping"))
	c.Close()
}
