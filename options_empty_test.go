package sshdial_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/stretchr/testify/require"
)

// TestEmptyOptionValues: an empty path or command is an error that says
// what "none" does, not a silent default.
func TestEmptyOptionValues(t *testing.T) {
	newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want, opt := range map[string]sshdial.ConnectOption{
		"WithProxyCommand: empty command": sshdial.WithProxyCommand(""),
		"WithIdentityFile: empty path":    sshdial.WithIdentityFile("/k", ""),
		"WithKnownHostsFile: empty path":  sshdial.WithKnownHostsFile(""),
		"WithAgentSocket: empty path":     sshdial.WithAgentSocket(""),
	} {
		_, err := sshdial.Connect(ctx, "127.0.0.1:1", sshdial.WithConfigFile(""), opt)
		require.ErrorContains(t, err, want)
		_, err = sshdial.DialClient(ctx, "127.0.0.1:1", sshdial.WithConfigFile(""), opt)
		require.ErrorContains(t, err, want)
	}
}

// TestKnownHostsFileNone: WithKnownHostsFile("none") reads and writes no
// user known_hosts, as UserKnownHostsFile none: the key in ~/.ssh's is not
// used, and accepting a key writes no file named "none".
func TestKnownHostsFileNone(t *testing.T) {
	srv := opensshd.Start(t)
	homeFor(t, srv) // its known_hosts holds the server's key
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dest := fmt.Sprintf("%s@%s", srv.User, srv.Addr)

	_, err := sshdial.Connect(ctx, dest, sshdial.WithKnownHostsFile("none"), sshdial.WithStrictHostKeyChecking("yes"))
	require.ErrorIs(t, err, sshdial.ErrHostKeyUnknown, "~/.ssh/known_hosts was read")

	d, err := sshdial.Connect(ctx, dest, sshdial.WithKnownHostsFile("none"), sshdial.WithStrictHostKeyChecking("no"))
	require.NoError(t, err)
	d.Close()
	_, err = os.Stat("none")
	require.ErrorIs(t, err, os.ErrNotExist, `a file named "none" was written`)

	// A later file replaces "none".
	d, err = sshdial.Connect(ctx, dest, sshdial.WithKnownHostsFile("none"), sshdial.WithKnownHostsFile(os.Getenv("HOME")+"/.ssh/known_hosts"),
		sshdial.WithStrictHostKeyChecking("yes"))
	require.NoError(t, err)
	d.Close()
}

// TestLongAndControlNamesInErrors: a host name over 255 bytes, as a
// destination or a jump host, is refused with an error of bounded size;
// a config path with a control character is quoted in the error.
func TestLongAndControlNamesInErrors(t *testing.T) {
	newHome(t)
	ctx := context.Background()
	long := strings.Repeat("a", 1<<20)
	_, err := sshdial.Connect(ctx, "127.0.0.1:1", sshdial.WithConfigFile(""), sshdial.WithJump(long))
	require.ErrorContains(t, err, "longer than 255 bytes")
	require.Less(t, len(err.Error()), 1000)
	_, err = sshdial.DialClient(ctx, long, sshdial.WithConfigFile(""))
	require.ErrorContains(t, err, "longer than 255 bytes")
	require.Less(t, len(err.Error()), 1000)
	_, err = sshdial.Connect(ctx, "h", sshdial.WithConfigFile("/nonexistent/a\x00b\x1b[31m"))
	require.ErrorContains(t, err, `\x00b\x1b[31m`)
	require.NotContains(t, err.Error(), "\x1b")
}
