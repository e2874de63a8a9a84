package opensshd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testproc"
	"github.com/sshdial/sshdial/internal/testutil"
	"golang.org/x/crypto/ssh"
)

// The SSH type of each host key type's public key, and the host key
// algorithms a client may ask for to get it.
var keyAlgorithms = map[KeyType]struct {
	typ  string
	algs []string
}{
	Ed25519: {ssh.KeyAlgoED25519, []string{ssh.KeyAlgoED25519}},
	RSA:     {ssh.KeyAlgoRSA, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}},
}

func TestHostKeys(t *testing.T) {
	for _, keys := range [][]KeyType{nil, {Ed25519}, {RSA}, {Ed25519, RSA}, {RSA, Ed25519}} {
		t.Run(fmt.Sprint(keys), func(t *testing.T) {
			s := StartWith(t, Options{HostKeys: keys})
			want := keys
			if len(want) == 0 {
				want = []KeyType{Ed25519}
			}
			if len(s.HostKeys) != len(want) {
				t.Fatalf("%d host keys, want %d", len(s.HostKeys), len(want))
			}
			if !bytes.Equal(s.HostKey.Marshal(), s.HostKeys[0].Marshal()) {
				t.Error("HostKey is not HostKeys[0]")
			}
			offered := map[KeyType]ssh.PublicKey{}
			for i, kt := range want {
				if got := s.HostKeys[i].Type(); got != keyAlgorithms[kt].typ {
					t.Errorf("host key %d is %s, want %s", i, got, keyAlgorithms[kt].typ)
				}
				offered[kt] = s.HostKeys[i]
			}
			// The default client configuration accepts whatever key sshd
			// picks.
			s.Dial(t)
			// Asked for one algorithm, sshd shows the key of that type
			// if it has one, and the handshake fails if it has none.
			for kt, ka := range keyAlgorithms {
				for _, alg := range ka.algs {
					var shown ssh.PublicKey
					config := s.ClientConfig()
					config.HostKeyAlgorithms = []string{alg}
					check := config.HostKeyCallback
					config.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
						shown = key
						return check(host, remote, key)
					}
					c, err := ssh.Dial("tcp", s.Addr, config)
					if err == nil {
						c.Close()
					}
					wantKey, has := offered[kt]
					switch {
					case has && err != nil:
						t.Errorf("%s: %v\nsshd: %s", alg, err, s.Stderr())
					case has && !bytes.Equal(shown.Marshal(), wantKey.Marshal()):
						t.Errorf("%s: sshd showed %s %s, want %s", alg, shown.Type(), ssh.FingerprintSHA256(shown), ssh.FingerprintSHA256(wantKey))
					case !has && err == nil:
						t.Errorf("%s: handshake succeeded with a server without a %s key", alg, kt)
					}
				}
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	for _, keys := range [][]KeyType{{"dsa"}, {""}, {Ed25519, Ed25519}, {RSA, Ed25519, RSA}} {
		if s, err := LaunchWith(Options{HostKeys: keys}); err == nil {
			s.Close()
			t.Errorf("LaunchWith host keys %q: nil error", keys)
		}
	}
}

func TestClientConfigRejectsOtherKeys(t *testing.T) {
	s := StartWith(t, Options{HostKeys: []KeyType{Ed25519, RSA}})
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	check := s.ClientConfig().HostKeyCallback
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if err := check(s.Addr, addr, other); err == nil {
		t.Error("ClientConfig accepts a key that is not the server's")
	}
	for _, k := range s.HostKeys {
		if err := check(s.Addr, addr, k); err != nil {
			t.Errorf("ClientConfig rejects the server's %s key: %v", k.Type(), err)
		}
	}
}

func TestClose(t *testing.T) {
	s := Start(t, "LogLevel VERBOSE")
	s.Dial(t).Close()
	begin := time.Now()
	s.Close()
	if d := time.Since(begin); d > 4*time.Second {
		t.Errorf("Close took %v", d)
	}
	if s.Cmd.ProcessState == nil {
		t.Error("sshd has not exited after Close")
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepts connections after Close", s.Addr)
	}
	s.Close() // again, as the test's cleanup does
}

// TestPortTakenByAnother checks that sshd is not taken for ready when
// another program's listener holds its port: sshd cannot bind it and
// exits, while that listener answers, even as an SSH server. Launch then
// tries another port. (testproc.WaitListening tells the listeners apart,
// on Linux.)
func TestPortTakenByAnother(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux tells which process holds a listening socket")
	}
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := ssh.NewSignerFromKey(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	impostors := map[string]func(net.Conn){
		"closes":         func(net.Conn) {},
		"OpenSSH banner": func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")) },
		"another SSH server": func(c net.Conn) {
			// Another test's server, with a host key of its own.
			config := &ssh.ServerConfig{NoClientAuth: true}
			config.AddHostKey(otherSigner)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			ssh.NewServerConn(c, config)
		},
	}
	for name, answer := range impostors {
		t.Run(name, func(t *testing.T) {
			s := Start(t)
			s.proc.Stop() // the port is free now, and the impostor takes it
			l, err := net.Listen("tcp", s.Addr)
			if err != nil {
				t.Skipf("could not take sshd's port after it stopped: %v", err)
			}
			testutil.ServeListener(t, l, answer)
			err = s.Restart()
			if !errors.Is(err, testproc.ErrExited) {
				t.Fatalf("Restart with the port taken: %v, want an error wrapping %v", err, testproc.ErrExited)
			}
			if !strings.Contains(err.Error(), "Address already in use") {
				t.Errorf("the error does not give sshd's reason: %v", err)
			}
		})
	}
}
