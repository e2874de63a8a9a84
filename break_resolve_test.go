package sshdial_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/stretchr/testify/require"
)

// TestBreakMatchExecContext: the context of ResolveConfig, Connect and
// DialClient bounds a Match exec command (the error matches the context's),
// also one that forks a grandchild which outlives it holding its standard output
// and error, a command that ignores SIGTERM and SIGHUP, and a context
// already ended runs no command at all. A command that exits at once but
// leaves a grandchild running does not hold the resolution either.
func TestBreakMatchExecContext(t *testing.T) {
	newHome(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	for name, command := range map[string]string{
		"grandchild": `sh -c 'sleep 3 & sleep 3 & wait'`,
		"no signals": `sh -c 'trap : TERM HUP INT; sleep 3'`,
		"holds fds":  `exec 3>&1 4>&2; sleep 3 <&- & wait`,
		"plain":      `sleep 3`,
	} {
		cfg := write(name, "Match exec \""+command+"\"\n  Port 2\n")
		for what, call := range map[string]func(ctx context.Context) error{
			"ResolveConfig": func(ctx context.Context) error {
				_, err := sshdial.ResolveConfig(ctx, "h", sshdial.WithConfigFile(cfg))
				return err
			},
			"Connect": func(ctx context.Context) error {
				_, err := sshdial.Connect(ctx, "h", sshdial.WithConfigFile(cfg))
				return err
			},
			"DialClient": func(ctx context.Context) error {
				_, err := sshdial.DialClient(ctx, "h", sshdial.WithConfigFile(cfg))
				return err
			},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			start := time.Now()
			err := call(ctx)
			took := time.Since(start)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded, "%s, %s", name, what)
			require.Less(t, took, 2500*time.Millisecond, "%s, %s waited for the command", name, what)
		}
	}

	// Exits 0 at once, a grandchild still running with the streams.
	cfg := write("quick", "Match exec \"sleep 3 & exit 0\"\n  Port 2\n")
	start := time.Now()
	rc, err := sshdial.ResolveConfig(context.Background(), "h", sshdial.WithConfigFile(cfg))
	require.NoError(t, err)
	require.Equal(t, []string{"2"}, rc.Get("port"))
	require.Less(t, time.Since(start), 2500*time.Millisecond, "the grandchild held ResolveConfig")

	// A context already ended: no command runs.
	mark := filepath.Join(dir, "ran")
	cfg = write("mark", "Match exec \"touch "+mark+"\"\n  Port 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for what, call := range map[string]func() error{
		"ResolveConfig": func() error { _, err := sshdial.ResolveConfig(ctx, "h", sshdial.WithConfigFile(cfg)); return err },
		"Connect":       func() error { _, err := sshdial.Connect(ctx, "h", sshdial.WithConfigFile(cfg)); return err },
		"DialClient":    func() error { _, err := sshdial.DialClient(ctx, "h", sshdial.WithConfigFile(cfg)); return err },
	} {
		require.ErrorIs(t, call(), context.Canceled, what)
		require.NoFileExists(t, mark, "%s ran a Match exec command with its context ended", what)
	}
	_, err = sshdial.ResolveConfig(nil, "h") //nolint:staticcheck // a nil context is the input under test
	require.ErrorContains(t, err, "nil context")
}
