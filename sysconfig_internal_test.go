package sshdial

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
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
	src := (&connectSettings{}).configSource(context.Background(), home, "me")
	h, err := src.hop("h", true)
	if err != nil || h.Port != 4242 || h.User != "sysuser" {
		t.Fatalf("system file: %+v, %v", h, err)
	}
	if old != "" {
		t.Errorf("tests run with systemConfigPath %q", old)
	}
}

// The lines of WithConfigLines are the destination's: a jump host does not
// get them (ssh passes no -o to ProxyJump's ssh).
func TestConfigLinesDestinationOnly(t *testing.T) {
	src := (&connectSettings{configLines: []string{"Port 7"}}).configSource(context.Background(), t.TempDir(), "me")
	if h, err := src.hop("x", true); err != nil || h.Port != 7 {
		t.Errorf("destination: %+v, %v", h, err)
	}
	if h, err := src.hop("x", false); err != nil || h.Port != 22 {
		t.Errorf("jump host: %+v, %v", h, err)
	}
}

// ServerAliveInterval 0 turns keepalives off, as in ssh; unset is 15s.
func TestServerAliveIntervalZero(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]time.Duration{"ServerAliveInterval 0\n": 0, "": defaultAliveInterval, "ServerAliveInterval 4\n": 4 * time.Second} {
		cfg := dir + "/config"
		if err := writeFile(cfg, text); err != nil {
			t.Fatal(err)
		}
		d, err := newConnectDialer(context.Background(), "h", []ConnectOption{WithConfigFile(cfg)})
		if err != nil {
			t.Fatal(err)
		}
		if d.keepaliveInterval != want {
			t.Errorf("%q: keepalive interval %v, want %v", text, d.keepaliveInterval, want)
		}
		d.Close()
	}
	// WithConfigLines reach Connect's destination.
	d, err := newConnectDialer(context.Background(), "h", []ConnectOption{WithConfigFile(""), WithConfigLines("ServerAliveInterval 0")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.keepaliveInterval != 0 {
		t.Errorf("WithConfigLines(ServerAliveInterval 0): keepalive interval %v", d.keepaliveInterval)
	}
}

// WithMatchExec(false): no command runs, and the skipped lines are logged.
func TestMatchExecOffLogged(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/config"
	if err := writeFile(cfg, "Match exec \"touch "+dir+"/ran\"\n  Port 1\n"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	d, err := newConnectDialer(context.Background(), "h", []ConnectOption{WithConfigFile(cfg), WithMatchExec(false), WithLogger(slog.New(slog.NewTextHandler(&log, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.Stat(dir + "/ran"); err == nil {
		t.Error("the command ran")
	}
	if !strings.Contains(log.String(), "Match exec commands not run") || !strings.Contains(log.String(), "line 1") {
		t.Errorf("log: %s", log.String())
	}
}
