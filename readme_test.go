package sshdial_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sshdial/sshdial"
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

// TestREADMEConfigKeys checks the README's table of config keys against
// ConfigKeys, the list the config reader uses: they must not drift.
func TestREADMEConfigKeys(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	text := string(readme)
	const open, end = "<!-- config-keys:", "<!-- /config-keys -->"
	i := strings.Index(text, open)
	require.GreaterOrEqual(t, i, 0, "README has the config keys table")
	text = text[i:]
	text = text[strings.Index(text, "\n")+1:]
	j := strings.Index(text, end)
	require.Greater(t, j, 0)
	var want strings.Builder
	want.WriteString("| key | what sshdial does with it |\n|---|---|\n")
	for _, k := range sshdial.ConfigKeys() {
		want.WriteString("| `" + k.Name + "` | " + k.Doc + " |\n")
	}
	require.Equal(t, want.String(), text[:j], "the README's config key table differs from sshdial.ConfigKeys(); replace it with the expected text")
}
