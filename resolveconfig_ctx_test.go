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

// TestContextBoundsMatchExec: the context of ResolveConfig, Connect and
// DialClient bounds a Match exec command that hangs: it is killed, and the
// error matches the context's.
func TestContextBoundsMatchExec(t *testing.T) {
	newHome(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(cfg, []byte("Match exec \"sleep 60\"\n  Port 2\n"), 0o600))
	for name, call := range map[string]func(ctx context.Context) error{
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
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, name)
		require.Less(t, time.Since(start), 20*time.Second, "%s waited for the command", name)
	}
	_, err := sshdial.ResolveConfig(nil, "h") //nolint:staticcheck // a nil context is the input under test
	require.ErrorContains(t, err, "nil context")
}
