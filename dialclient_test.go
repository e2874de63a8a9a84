package sshdial_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

// TestDialClient: DialClient gives an *ssh.Client that runs commands, made
// from ~/.ssh/config through a jump host; closing it closes the jump
// host's connection too (goleak sees every client goroutine gone).
func TestDialClient(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	jump := opensshd.StartWith(t, opensshd.Options{Config: []string{"LogLevel DEBUG1"}})
	dest := opensshd.Start(t)
	h := newHome(t)
	h.writeKey(t, jump, "id_ed25519", "")
	f, err := os.OpenFile(filepath.Join(dest.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	f.Write(ssh.MarshalAuthorizedKey(jump.ClientKey.PublicKey()))
	f.Close()
	h.write(t, "known_hosts", keyscan(t, jump.Addr, "ed25519")+keyscan(t, dest.Addr, "ed25519"))
	h.write(t, "config", fmt.Sprintf("Host jump\n  HostName 127.0.0.1\n  Port %s\n  User %s\nHost inner\n  HostName 127.0.0.1\n  Port %s\n  User %s\n  ProxyJump jump\n",
		portOf(jump.Addr), jump.User, portOf(dest.Addr), dest.User))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := sshdial.DialClient(ctx, "inner")
	require.NoError(t, err)
	s, err := client.NewSession()
	require.NoError(t, err)
	out, err := s.Output("echo through-the-jump")
	require.NoError(t, err)
	require.Equal(t, "through-the-jump\n", string(out))
	require.Contains(t, jump.Stderr(), "direct-tcpip", "the destination was reached through the jump host")
	require.NoError(t, client.Close())
}

// TestDialClientUserAndPort: WithUser and WithPort win over the
// destination's user@ and :port, as ssh -l and -p do.
func TestDialClientUserAndPort(t *testing.T) {
	srv := opensshd.Start(t)
	homeFor(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := sshdial.DialClient(ctx, "nobody-here@127.0.0.1:1",
		sshdial.WithUser(srv.User), sshdial.WithPort(int(netip.MustParseAddrPort(srv.Addr).Port())))
	require.NoError(t, err)
	require.Equal(t, srv.User, client.User())
	client.Close()

	// Without them, the destination's user and port are used: port 1
	// refuses, which shows the options above were what made it work.
	_, err = sshdial.DialClient(ctx, srv.User+"@127.0.0.1:1")
	require.ErrorContains(t, err, "127.0.0.1:1")
}

// TestDialClientRefusesDialerOptions: options that configure a Dialer
// are errors for DialClient, as are a nil context and bad values; the host
// key check is Connect's.
func TestDialClientRefusesDialerOptions(t *testing.T) {
	srv := opensshd.Start(t)
	h := homeFor(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dest := srv.User + "@" + srv.Addr
	for name, opt := range map[string]sshdial.ConnectOption{
		"WithPool":       sshdial.WithPool(2),
		"WithKeepalive":  sshdial.WithKeepalive(time.Second, time.Second),
		"WithControl":    sshdial.WithControlPath(filepath.Join(h.dir, "ctl")),
		"WithOriginator": sshdial.WithOriginator(netip.MustParseAddrPort("127.0.0.1:9")),
	} {
		_, err := sshdial.DialClient(ctx, dest, opt)
		require.ErrorContains(t, err, name+" configure", name)
	}
	_, err := sshdial.DialClient(nil, dest) //nolint:staticcheck // a nil context is the input under test
	require.ErrorContains(t, err, "nil context")
	_, err = sshdial.DialClient(ctx, dest, sshdial.WithPort(0))
	require.ErrorContains(t, err, "WithPort(0)")
	_, err = sshdial.DialClient(ctx, dest, sshdial.WithUser("a\nb"))
	require.ErrorContains(t, err, "WithUser")
	_, err = sshdial.DialClient(ctx, dest, nil)
	require.ErrorContains(t, err, "nil option")

	h.write(t, "known_hosts", "")
	_, err = sshdial.DialClient(ctx, dest)
	require.ErrorIs(t, err, sshdial.ErrHostKeyUnknown)
}

// TestOptionKinds: the options that only mean something when sshdial
// makes the SSH connections are ConnectOptions, so that New(c, WithPool(4))
// does not compile; the others are Options, which Connect takes too.
func TestOptionKinds(t *testing.T) {
	optionType := reflect.TypeFor[sshdial.Option]()
	connectType := reflect.TypeFor[sshdial.ConnectOption]()
	general := map[string]any{
		"WithLogger":      sshdial.WithLogger,
		"WithOriginator":  sshdial.WithOriginator,
		"WithKeepalive":   sshdial.WithKeepalive,
		"WithControl":     sshdial.WithControl,
		"WithControlPath": sshdial.WithControlPath,
	}
	connectOnly := map[string]any{
		"WithClientConfig": sshdial.WithClientConfig, "WithConfigFile": sshdial.WithConfigFile,
		"WithConfigLines": sshdial.WithConfigLines, "WithSystemConfigFile": sshdial.WithSystemConfigFile,
		"WithMatchExec": sshdial.WithMatchExec, "WithResolvedConfig": sshdial.WithResolvedConfig,
		"WithJump": sshdial.WithJump, "WithProxyCommand": sshdial.WithProxyCommand,
		"WithAddressFamily": sshdial.WithAddressFamily, "WithPool": sshdial.WithPool,
		"WithPassphrase": sshdial.WithPassphrase, "WithPassword": sshdial.WithPassword,
		"WithKeyboardInteractive": sshdial.WithKeyboardInteractive, "WithIdentityFile": sshdial.WithIdentityFile,
		"WithKnownHostsFile": sshdial.WithKnownHostsFile, "WithAgentSocket": sshdial.WithAgentSocket,
		"WithStrictHostKeyChecking": sshdial.WithStrictHostKeyChecking, "WithConnectTimeout": sshdial.WithConnectTimeout,
		"WithUser": sshdial.WithUser, "WithPort": sshdial.WithPort,
	}
	call := func(f any) any {
		ft := reflect.TypeOf(f)
		args := make([]reflect.Value, ft.NumIn())
		for i := range args {
			args[i] = reflect.Zero(ft.In(i))
		}
		if ft.IsVariadic() {
			return reflect.ValueOf(f).CallSlice(args)[0].Interface()
		}
		return reflect.ValueOf(f).Call(args)[0].Interface()
	}
	for name, f := range general {
		require.Equal(t, optionType, reflect.TypeOf(f).Out(0), "%s returns an Option", name)
	}
	for name, f := range connectOnly {
		require.Equal(t, connectType, reflect.TypeOf(f).Out(0), "%s returns a ConnectOption", name)
		_, isOption := call(f).(sshdial.Option)
		require.False(t, isOption, "%s's value must not be an Option: New and NewPool would take it", name)
	}

	// Every exported With function is in one of the lists.
	out, err := exec.Command("go", "doc", "-short", ".").Output()
	require.NoError(t, err)
	for _, line := range strings.Split(string(out), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "func With")
		if !ok {
			continue
		}
		name = "With" + name[:strings.IndexByte(name, '(')]
		_, g := general[name]
		_, c := connectOnly[name]
		require.True(t, g || c, "%s is in neither list", name)
	}
}

// TestWithClientConfigConflicts: the options a ClientConfig replaces are
// errors beside it, not silently dropped; with a jump host they apply to
// it, so they are allowed.
func TestWithClientConfigConflicts(t *testing.T) {
	newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc := &ssh.ClientConfig{User: "me", HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	base := []sshdial.ConnectOption{sshdial.WithConfigFile(""), sshdial.WithClientConfig(cc)}
	for name, opt := range map[string]sshdial.ConnectOption{
		"WithPassword":              sshdial.WithPassword(func(context.Context) (string, error) { return "", nil }),
		"WithUser":                  sshdial.WithUser("other"),
		"WithIdentityFile":          sshdial.WithIdentityFile("/nonexistent"),
		"WithKnownHostsFile":        sshdial.WithKnownHostsFile("/nonexistent"),
		"WithAgentSocket":           sshdial.WithAgentSocket("none"),
		"WithPassphrase":            sshdial.WithPassphrase(func(context.Context, string) ([]byte, error) { return nil, nil }),
		"WithKeyboardInteractive":   sshdial.WithKeyboardInteractive(func(context.Context, sshdial.Challenge) ([]string, error) { return nil, nil }),
		"WithStrictHostKeyChecking": sshdial.WithStrictHostKeyChecking("yes"),
	} {
		_, err := sshdial.Connect(ctx, "127.0.0.1:1", append(base, opt)...)
		require.ErrorContains(t, err, "WithClientConfig replaces what "+name, name)
		_, err = sshdial.DialClient(ctx, "127.0.0.1:1", append(base, opt)...)
		require.ErrorContains(t, err, "WithClientConfig replaces what "+name, name)

		// Through a jump host, the hop options apply to it.
		_, err = sshdial.Connect(ctx, "127.0.0.1:1", append(base, opt, sshdial.WithJump("127.0.0.1:2"))...)
		require.Error(t, err)
		if name == "WithPassword" || name == "WithUser" {
			require.ErrorContains(t, err, "WithClientConfig replaces what "+name, name)
		} else {
			require.NotContains(t, err.Error(), "WithClientConfig replaces", name)
			require.Contains(t, err.Error(), "127.0.0.1:2", "%s: the jump host was tried", name)
		}
	}
	// A ClientConfig without a User leaves WithUser to name the user.
	_, err := sshdial.Connect(ctx, "127.0.0.1:1", sshdial.WithConfigFile(""),
		sshdial.WithClientConfig(&ssh.ClientConfig{HostKeyCallback: ssh.InsecureIgnoreHostKey()}), sshdial.WithUser("other"))
	require.NotContains(t, err.Error(), "WithClientConfig replaces")
}

// TestWithUserPortAgainstSSH: WithUser and WithPort are ssh's -l and -p
// given before everything else, checked against ssh -G: they win over the
// destination, WithConfigLines (-o) and the config file.
func TestWithUserPortAgainstSSH(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatal("no ssh, and SSHDIAL_REQUIRE_SSHD is set")
		}
		t.Skip("no ssh")
	}
	h := newHome(t)
	cfg := h.write(t, "cfg", "Host *\n  User fileuser\n  Port 2201\nMatch user lflag\n  HostName matched.example\n")
	for _, tc := range []struct {
		dest    string
		opts    []sshdial.ConnectOption
		sshArgs []string
	}{
		{"host", nil, nil},
		{"ssh://destuser@host:2202", nil, nil},
		{"ssh://destuser@host:2202", []sshdial.ConnectOption{sshdial.WithUser("lflag"), sshdial.WithPort(2203)}, []string{"-l", "lflag", "-p", "2203"}},
		{"destuser@host", []sshdial.ConnectOption{sshdial.WithUser("lflag")}, []string{"-l", "lflag"}},
		{"host", []sshdial.ConnectOption{sshdial.WithUser("lflag"), sshdial.WithConfigLines("User oline", "Port 2204"), sshdial.WithPort(2203)},
			[]string{"-l", "lflag", "-p", "2203", "-o", "User oline", "-o", "Port 2204"}},
		{"destuser@host", []sshdial.ConnectOption{sshdial.WithConfigLines("User oline")}, []string{"-o", "User oline"}},
		{"host", []sshdial.ConnectOption{sshdial.WithUser("me@corp.example")}, []string{"-l", "me@corp.example"}},
	} {
		name := tc.dest + " " + strings.Join(tc.sshArgs, " ")
		args := append(append([]string{"-G", "-F", cfg}, tc.sshArgs...), tc.dest)
		out, err := exec.Command(sshPath, args...).Output()
		require.NoError(t, err, name)
		want := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok && (k == "user" || k == "port" || k == "hostname") {
				want[k] = v
			}
		}
		rc, err := sshdial.ResolveConfig(context.Background(), tc.dest, append([]sshdial.ConnectOption{sshdial.WithConfigFile(cfg)}, tc.opts...)...)
		require.NoError(t, err, name)
		for k, v := range want {
			require.Equal(t, []string{v}, rc.Get(k), "%s: %s", name, k)
		}
	}
}
