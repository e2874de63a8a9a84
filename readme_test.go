package sshdial_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEFirstBlockCompiles builds the README's first Go code block as
// it stands, as a program inside this module: what a new user copies must
// compile.
func TestREADMEFirstBlockCompiles(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, "```go\n")
	require.GreaterOrEqual(t, start, 0, "README has a Go code block")
	text = text[start+len("```go\n"):]
	end := strings.Index(text, "```")
	require.Greater(t, end, 0)
	block := text[:end]
	require.Contains(t, block, "sshdial.Connect(", "the first block uses Connect")

	dir, err := os.MkdirTemp(".", "readme-check-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(block), 0o600))
	cmd := exec.Command("go", "vet", "./"+filepath.Base(dir))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the README's first block does not compile:\n%s\n%s", out, block)
}
