package sshdial_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sshdial/sshdial"
)

// resolveTestHome makes a HOME with text as ~/.ssh/config and a system file.
func resolveTestHome(t *testing.T, user, system string) (home, systemPath string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	systemPath = filepath.Join(home, "ssh_config")
	if err := os.WriteFile(systemPath, []byte(system), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, systemPath
}

func cfgGet(t *testing.T, rc *sshdial.ResolvedConfig, key string) string {
	t.Helper()
	return strings.Join(rc.Get(key), " ")
}

func TestResolveConfigFiles(t *testing.T) {
	_, system := resolveTestHome(t, "Host h\n  Port 1\n", "Host *\n  Port 2\n  User sysuser\n")
	rc, err := sshdial.ResolveConfig(context.Background(), "h", sshdial.WithSystemConfigFile(system))
	if err != nil {
		t.Fatal(err)
	}
	// The user's file first (its Port wins), then the system's.
	if cfgGet(t, rc, "port") != "1" || cfgGet(t, rc, "user") != "sysuser" {
		t.Errorf("user then system file: port %q user %q", rc.Get("port"), rc.Get("user"))
	}
	// WithConfigFile replaces both.
	other := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(other, []byte("User fromf\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err = sshdial.ResolveConfig(context.Background(), "h", sshdial.WithSystemConfigFile(system), sshdial.WithConfigFile(other))
	if err != nil || cfgGet(t, rc, "port") != "22" || cfgGet(t, rc, "user") != "fromf" {
		t.Errorf("WithConfigFile: %v %v", rc, err)
	}
	for _, none := range []string{"", "none"} {
		rc, err = sshdial.ResolveConfig(context.Background(), "h", sshdial.WithSystemConfigFile(system), sshdial.WithConfigFile(none))
		if err != nil || cfgGet(t, rc, "port") != "22" {
			t.Errorf("WithConfigFile(%q): %v %v", none, rc, err)
		}
	}
	if _, err := sshdial.ResolveConfig(context.Background(), "h", sshdial.WithConfigFile(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Error("a missing WithConfigFile: no error")
	}
	// The lines of WithConfigLines come first; destination user and port next.
	rc, err = sshdial.ResolveConfig(context.Background(), "bob@h:7", sshdial.WithSystemConfigFile(system), sshdial.WithConfigLines("Port=9", "IdentityFile ~/k"))
	if err != nil || cfgGet(t, rc, "port") != "9" || cfgGet(t, rc, "user") != "bob" || cfgGet(t, rc, "identityfile") != "~/k" {
		t.Errorf("WithConfigLines: %v %v", rc, err)
	}
	if _, err := sshdial.ResolveConfig(context.Background(), "h", sshdial.WithConfigLines("Match all")); err == nil {
		t.Error("WithConfigLines(Match all): no error")
	}
	var b bytes.Buffer
	if _, err := rc.WriteTo(&b); err != nil || !strings.Contains(b.String(), "\nport 9\n") || !strings.HasPrefix(b.String(), "host h\nuser bob\n") {
		t.Errorf("WriteTo: %v\n%s", err, b.String())
	}
}

func TestResolveConfigMatchExec(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ran")
	resolveTestHome(t, "Match exec \"touch "+flag+"\"\n  Port 1\nMatch !exec \"true\"\n  Port 2\nHost *\n  Port 3\n", "")
	t.Setenv("SHELL", "/bin/sh")
	rc, err := sshdial.ResolveConfig(context.Background(), "h", sshdial.WithSystemConfigFile(""), sshdial.WithMatchExec(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(flag); err == nil {
		t.Error("WithMatchExec(false) ran a command")
	}
	if cfgGet(t, rc, "port") != "3" || len(rc.SkippedExec()) != 2 {
		t.Errorf("WithMatchExec(false): port %q skipped %q; want 3 and two lines", rc.Get("port"), rc.SkippedExec())
	}
	rc, err = sshdial.ResolveConfig(context.Background(), "h", sshdial.WithSystemConfigFile(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(flag); err != nil || cfgGet(t, rc, "port") != "1" {
		t.Errorf("Match exec: ran %v, port %q", err, rc.Get("port"))
	}
}

func TestConfigKeys(t *testing.T) {
	var names []string
	for _, k := range sshdial.ConfigKeys() {
		if k.Name == "" || k.Doc == "" {
			t.Errorf("key %+v", k)
		}
		names = append(names, k.Name)
	}
	for _, want := range []string{"HostName", "ProxyJump", "ControlPath", "ControlMaster", "Match"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("ConfigKeys lacks %s", want)
		}
	}
	if reflect.DeepEqual(names, nil) {
		t.Error("no keys")
	}
}
