package main

import (
	"context"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
)

// The tests never read the machine's /etc/ssh/ssh_config (init runs in the
// test binary, also when it runs as sshdial).
func init() {
	none := ""
	systemConfigFile = &none
}

// configured parses args and evaluates the configuration as the command
// does before connecting.
func configured(t *testing.T, args ...string) (*options, *sshdial.ResolvedConfig) {
	t.Helper()
	o, err := parseArgs(args)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	opts := connectOptions(o, nil)
	if _, err := configure(context.Background(), o, opts); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	rc, err := sshdial.ResolveConfig(context.Background(), o.destination, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return o, rc
}

// The -o lines are config lines: their values win over the config file's,
// and the file's apply to what the command takes from the configuration.
func TestConfigLines(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cfg := filepath.Join(home, "config")
	if err := os.WriteFile(cfg, []byte("Host h\n  ConnectTimeout 99\n  BatchMode no\n  User cfguser\n  ExitOnForwardFailure no\n  ServerAliveInterval 40\n  StrictHostKeyChecking no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, rc := configured(t, "-F", cfg, "-o", "ServerAliveInterval=5", "-o", "ExitOnForwardFailure yes", "-o", "ConnectTimeout=7",
		"-o", "BatchMode=yes", "-g", "-i", "/keys/a b", "-J", "j1,j2", "-o", "UserKnownHostsFile=~/kh none2", "-D1", "h")
	if o.connectTimeout != 7*time.Second || !o.exitOnFwdFail || !o.batch || !o.gatewayPorts || o.strictNo {
		t.Errorf("options: %+v", o)
	}
	for key, want := range map[string][]string{
		"user": {"cfguser"}, "serveraliveinterval": {"5"}, "identityfile": {"/keys/a b"}, "proxyjump": {"j1,j2"},
		"userknownhostsfile": {home + "/kh none2"}, "stricthostkeychecking": {"false"}, "gatewayports": {"yes"},
	} {
		if got := rc.Get(key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q; want %q", key, got, want)
		}
	}
	// The config file's values apply when no -o sets them; sshdial's
	// default for ExitOnForwardFailure is yes.
	o, _ = configured(t, "-F", cfg, "-D1", "h")
	if o.connectTimeout != 99*time.Second || o.exitOnFwdFail || o.batch || o.gatewayPorts {
		t.Errorf("from the file: %+v", o)
	}
	o, _ = configured(t, "-F", "none", "-D1", "h")
	if !o.exitOnFwdFail || o.connectTimeout != 0 {
		t.Errorf("defaults: %+v", o)
	}
	// StrictHostKeyChecking=no with -o turns checks off; a file's does not.
	if o, _ = configured(t, "-F", cfg, "-o", "StrictHostKeyChecking=no", "-D1", "h"); !o.strictNo {
		t.Error("-o StrictHostKeyChecking=no: not taken")
	}
	// -4 and -6 set AddressFamily whatever -o says, as in ssh.
	if _, rc = configured(t, "-F", "none", "-o", "AddressFamily=inet", "-6", "-D1", "h"); rc.Get("addressfamily")[0] != "inet6" {
		t.Errorf("-6: %q", rc.Get("addressfamily"))
	}
}

// UserKnownHostsFile none is no file, and ~ and tokens expand in -o
// UserKnownHostsFile as in the config file (issue #17, item 5).
func TestUserKnownHostsFileNoneAndTilde(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	_, rc := configured(t, "-F", "none", "-o", "UserKnownHostsFile=none", "-D1", "h")
	if got := rc.Get("userknownhostsfile"); !reflect.DeepEqual(got, []string{"none"}) {
		t.Errorf("none: %q", got)
	}
	_, rc = configured(t, "-F", "none", "-o", "UserKnownHostsFile=~/.ssh/kh_%h %d/kh2", "-D1", "h")
	if got := rc.Get("userknownhostsfile"); !reflect.DeepEqual(got, []string{home + "/.ssh/kh_h " + home + "/kh2"}) {
		t.Errorf("~ and tokens: %q", got)
	}
}

// sshdial -G prints what ssh -G prints for the keys sshdial uses.
func TestDumpConfigAgainstSSH(t *testing.T) {
	me, err := osuser.Current()
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("HOME", me.HomeDir) // ssh takes ~ from the passwd entry
	cfg := filepath.Join(t.TempDir(), "config")
	text := "Host web\n  HostName Web.Example.COM\n  IdentityFile /keys/%h\n  ControlPath /tmp/cm-%r@%h:%p\n  ProxyJump bastion\n" +
		"Match originalhost web user bob\n  Port 2200\nHost *\n  ServerAliveInterval 30\n  ForwardAgent yes\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runSync(t, 10*time.Second, "-G", "-F", cfg, "-o", "ConnectTimeout=9", "bob@web")
	if code != 0 {
		t.Fatalf("sshdial -G: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"user bob\n", "hostname web.example.com\n", "port 2200\n", "identityfile /keys/%h\n",
		"controlpath /tmp/cm-bob@web.example.com:2200\n", "proxyjump bastion\n", "connecttimeout 9\n", "serveraliveinterval 30\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("sshdial -G lacks %q:\n%s", want, out)
		}
	}
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatal("no ssh, and SSHDIAL_REQUIRE_SSHD is set")
		}
		t.Skip("no ssh to compare with")
	}
	theirs, err := exec.Command(ssh, "-G", "-F", cfg, "-o", "ConnectTimeout=9", "bob@web").Output()
	if err != nil {
		t.Fatalf("ssh -G: %v", err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(theirs), "\n") {
		lines[l] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !lines[l] {
			t.Errorf("sshdial -G prints %q; ssh -G does not", l)
		}
	}
}

// The help lists every config key the reader uses.
func TestHelpListsConfigKeys(t *testing.T) {
	for _, k := range sshdial.ConfigKeys() {
		if !strings.Contains(helpText, k.Name) {
			t.Errorf("the help does not list %s", k.Name)
		}
	}
	if strings.Contains(helpText, "@CONFIGKEYS@") {
		t.Error("the help still holds its placeholder")
	}
}
