package sshdial

import (
	"os"
	"testing"
)

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

// The tests never read the machine's /etc/ssh/ssh_config: those that want a
// system file name one (WithSystemConfigFile, or systemConfigPath).
func init() { systemConfigPath = "" }

// Connect reads the system file after the user's (the path is the
// package's, which the tests set).
func TestSystemConfigPathRead(t *testing.T) {
	home := t.TempDir()
	sys := home + "/system_config"
	if err := writeFile(sys, "Host *\n  Port 4242\n  User sysuser\n"); err != nil {
		t.Fatal(err)
	}
	old := systemConfigPath
	systemConfigPath = sys
	defer func() { systemConfigPath = old }()
	src := (&connectSettings{}).configSource(home, "me")
	h, err := src.hop("h", true)
	if err != nil || h.Port != 4242 || h.User != "sysuser" {
		t.Fatalf("system file: %+v, %v", h, err)
	}
	if old != "" {
		t.Errorf("tests run with systemConfigPath %q", old)
	}
}
