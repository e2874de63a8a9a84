package sshdial_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestCallbacksBoundedByContext: a password, keyboard-interactive or
// passphrase callback that blocks and ignores its context (a prompt nobody
// answers) cannot hold Connect or DialClient past their context: they fail
// with its error soon after it ends; a callback that watches ctx sees it
// end.
func TestCallbacksBoundedByContext(t *testing.T) {
	release := make(chan struct{}) // the callbacks return once the test is over
	t.Cleanup(func() { close(release) })
	sawEnd := make(chan struct{}, 8)
	block := func(ctx context.Context) {
		go func() { <-ctx.Done(); sawEnd <- struct{}{} }()
		<-release
	}

	srv := sshtest.NewUnstartedServer()
	srv.Config.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no keys")
	}
	srv.Config.PasswordCallback = func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) { return nil, nil }
	srv.Config.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		_, err := client("", "", []string{"Code: "}, []bool{false})
		return nil, err
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h := newHome(t)
	h.write(t, "known_hosts", knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey())+"\n")

	sshd := opensshd.Start(t)
	encrypted := h.writeKey(t, sshd, "id_encrypted", "secret")
	h.write(t, "sshd_known_hosts", keyscan(t, sshd.Addr, "ed25519"))

	cases := map[string]struct {
		dest string
		opts []sshdial.ConnectOption
	}{
		"password": {"u@" + srv.Addr(), []sshdial.ConnectOption{sshdial.WithPassword(func(ctx context.Context) (string, error) {
			block(ctx)
			return "", nil
		})}},
		"keyboard-interactive": {"u@" + srv.Addr(), []sshdial.ConnectOption{sshdial.WithKeyboardInteractive(func(ctx context.Context, _ sshdial.Challenge) ([]string, error) {
			block(ctx)
			return nil, nil
		})}},
		"passphrase": {fmt.Sprintf("%s@%s", sshd.User, sshd.Addr), []sshdial.ConnectOption{
			sshdial.WithIdentityFile(encrypted), sshdial.WithKnownHostsFile(h.sshDir + "/sshd_known_hosts"),
			sshdial.WithPassphrase(func(ctx context.Context, _ string) ([]byte, error) {
				block(ctx)
				return nil, nil
			})}},
	}
	for name, tc := range cases {
		for _, via := range []string{"Connect", "DialClient"} {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			opts := append([]sshdial.ConnectOption{sshdial.WithConfigFile("")}, tc.opts...)
			start := time.Now()
			var err error
			if via == "Connect" {
				var d *sshdial.Dialer
				if d, err = sshdial.Connect(ctx, tc.dest, opts...); err == nil {
					d.Close()
				}
			} else {
				var c *ssh.Client
				if c, err = sshdial.DialClient(ctx, tc.dest, opts...); err == nil {
					c.Close()
				}
			}
			took := time.Since(start)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded, "%s via %s", name, via)
			require.Less(t, took, 10*time.Second, "%s via %s waited for the callback", name, via)
			select {
			case <-sawEnd:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s via %s: the callback's ctx never ended", name, via)
			}
		}
	}
}
