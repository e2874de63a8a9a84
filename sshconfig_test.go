package sshdial

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/sshconfig"
)

func TestParseDestination(t *testing.T) {
	ok := []struct {
		in, user, host string
		port           int
	}{
		{"host", "", "host", 0},
		{"user@host", "user", "host", 0},
		{"host:2222", "", "host", 2222},
		{"user@host:2222", "user", "host", 2222},
		{"[::1]:2222", "", "::1", 2222},
		{"[::1]", "", "::1", 0},
		{"user@[::1]:2222", "user", "::1", 2222},
		{"::1", "", "::1", 0},
		{"fe80::1%eth0", "", "fe80::1%eth0", 0},
		{"alice@corp.example@host", "alice@corp.example", "host", 0}, // last '@' splits
		{"ssh://user@host:2222", "user", "host", 2222},
		{"ssh://host", "", "host", 0},
		{"ssh://host/", "", "host", 0},
		{"ssh://a%40b@host", "a@b", "host", 0},
		{"ssh://user;fingerprint=SHA256-xyz@host", "user", "host", 0},
		{"host:65535", "", "host", 65535},
		// Service names, as ssh's a2port takes them.
		{"host:ssh", "", "host", 22},
		{"ssh://user@host:https", "user", "host", 443},
		{"ssh://a%40b;x=y@host:http/", "a@b", "host", 80},
		// As OpenSSH's parse_uri: the user ends at the first '@', '+' is a
		// space, a final '.' is dropped, and "host:" has no port.
		{"ssh://a+b%41@host", "a bA", "host", 0},
		{"ssh://u/x?y#z@host", "u/x?y#z", "host", 0},
		{"ssh://u@Host.Example.", "u", "Host.Example", 0},
		{"ssh://host:", "", "host", 0},
		{"ssh://host:22/", "", "host", 22},
		{"DOMAIN\\John Doe@host", "DOMAIN\\John Doe", "host", 0},
	}
	for _, c := range ok {
		u, h, p, err := sshconfig.ParseDestination(c.in)
		if err != nil || u != c.user || h != c.host || p != c.port {
			t.Errorf("sshconfig.ParseDestination(%q) = %q, %q, %d, %v; want %q, %q, %d", c.in, u, h, p, err, c.user, c.host, c.port)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty destination"},
		{"   ", "empty destination"},
		{"@host", "empty user"},
		{"host:", "empty port"},
		{"host:0", "out of range"},
		{"host:65536", "out of range"},
		{"host:99999999999999999999", "out of range"},
		{"host:nosuchservice", "not a number or a known service"},
		{"host:-1", "out of range"},
		{"ssh://host:nosuchservice", "not a number or a known service"},
		{"ssh://u:secret@host:https", "password"},
		{"ssh://me:ssh/secret@host", "before its '@'"},
		{"ssh://me:22/secret@host", "before its '@'"},
		{"ssh://me:http?secret@host", "before its '@'"},
		{"ssh://me:https#secret@host", "before its '@'"},
		{"ssh://me:99999/secret@host", "before its '@'"},
		{"ssh://h::http", "not a number"},
		{"ssh://h:ssh:http", "not a number"},
		{"ssh://h:x:80", "not a number"},
		{"ssh://host:-1", "out of range"},
		{"ssh://user@[::1]:22", "IPv6 address"},
		{"ssh://[::1]:https", "IPv6 address"},
		{"ssh://a@b@host", "more than one '@'"},
		{"ssh://u%3asecret@host", "password"},
		{"ssh://u%3Asecret@host:22", "password"},
		{"ssh://alice@corp.example:secret@host", "more than one '@'"},
		{"ssh://a%4@host", "bad %-escape"},
		{"ssh://a%@host", "bad %-escape"},
		{"ssh://a%00@host", "%00"},
		{"ssh://host..x", `".."`},
		{"ssh://-host", "starts with an invalid character"},
		{"ssh://.host", "starts with an invalid character"},
		{"SSH://host", "lower case"},
		{"ssh://host:22/x", "path"},
		{"ssh://u;x@h@", "more than one '@'"},
		{"user@", "empty host"},
		{"user@:22", "empty host"},
		{"ho st", "space or control"},
		{"host\x00", "space or control"},
		{"host\n", "space or control"},
		{"-oProxyCommand=x", "starts with '-'"},
		{"ho;st", "invalid character"},
		{"[::1", "missing ']'"},
		{"[::1]x", "after ']'"},
		{"[::1]:", "empty port"},
		{"a:b:c", "not an IPv6 address"},
		{"-user@host", "starts with '-'"},
		{"us`er@host", "invalid character"},
		{"ssh://user:secret@host", "password"},
		{"ssh://host/path", "path"},
		{"ssh://host?x=1", "invalid characters"},
		{"ssh://host#frag", "invalid characters"},
		{"ssh://host:0", "out of range"},
		{"ssh://@host", "empty user"},
		{"ssh://", "empty host"},
		{"ssh://ho st", "invalid characters"},
	}
	for _, c := range bad {
		_, _, _, err := sshconfig.ParseDestination(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("sshconfig.ParseDestination(%q) error = %v; want one containing %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("sshconfig.ParseDestination(%q) error %q reveals the password", c.in, err)
		}
	}
}

// writeConfigFile writes text as home/.ssh/config (creating home/.ssh) and returns its path.
func writeConfigFile(t *testing.T, home, text string) string {
	t.Helper()
	dir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// resolveWith writes config in a fresh temporary HOME and resolves dest with it.
func resolveWith(t *testing.T, config, dest string) (*hop, string, error) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	p := writeConfigFile(t, home, config)
	h, err := resolveHop(dest, p, home, "local")
	return h, home, err
}

func TestResolveHopDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	// No ~/.ssh/config at the default path: defaults, no error.
	h, err := resolveHop("Example.COM", filepath.Join(home, ".ssh", "config"), home, "local")
	if err != nil {
		t.Fatal(err)
	}
	want := &hop{
		Alias:                 "Example.COM",
		HostName:              "example.com",
		Port:                  22,
		User:                  "local",
		UserKnownHostsFiles:   []string{filepath.Join(home, ".ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts2")},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		StrictHostKeyChecking: "ask",
		ServerAliveCountMax:   3,
		Network:               "tcp",
		ControlMaster:         "no",
	}
	want.tokens = h.tokens
	if !reflect.DeepEqual(h, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", h, want)
	}
	// path "" reads no file at all.
	writeConfigFile(t, home, "Port 9\n")
	if h, err := resolveHop("[FE80::1]:7", "", home, "local"); err != nil || h.Port != 7 || h.HostName != "FE80::1" {
		t.Errorf("no config: %+v, %v (an address keeps its case)", h, err)
	}
	// A missing file named explicitly is an error.
	if _, err := resolveHop("h", filepath.Join(home, "nope"), home, "local"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing explicit config: %v", err)
	}
	// An unreadable file (a directory) is an error.
	if _, err := resolveHop("h", home, home, "local"); err == nil {
		t.Error("config path naming a directory: no error")
	}
	// No local user and none in config or destination.
	if _, err := resolveHop("h", "", home, ""); err == nil || !strings.Contains(err.Error(), "no user name") {
		t.Errorf("no user at all: %v", err)
	}
}

func TestResolveHopConfigKeywords(t *testing.T) {
	t.Setenv("SSHDIAL_TEST_DIR", "/env/dir")
	const config = `
# comment
Host web
  HostName %h.example.COM
  Port 2200
  User alice
  IdentityFile ~/.ssh/id_web
  IdentityFile "/keys/with space/%r@%h:%p"
  CertificateFile ~/.ssh/id_web-cert.pub
  IdentitiesOnly yes
  IdentityAgent ~/agent.%n.sock
  ProxyJump jump1,bob@jump2:2022
  UserKnownHostsFile ~/.ssh/kh_%n /abs/kh_%h_%p
  UserKnownHostsFile /never/used
  GlobalKnownHostsFile /etc/global_kh
  HostKeyAlias WebAlias
  StrictHostKeyChecking accept-new
  ServerAliveInterval 1m30s
  ServerAliveCountMax 5
  ConnectTimeout 10
  ControlPath ~/.ssh/cm-%r@%h:%p
  ControlMaster yes

Host *
  IdentityFile ${SSHDIAL_TEST_DIR}/id_all_%u_%d_%%
  CertificateFile /c2
  Port 1
  User nobody
  StrictHostKeyChecking no
  ServerAliveCountMax 9
  ForwardAgent yes
`
	h, home, err := resolveWith(t, config, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := &hop{
		Alias:    "web",
		HostName: "web.example.com",
		Port:     2200,
		User:     "alice",
		IdentityFiles: []string{
			filepath.Join(home, ".ssh", "id_web"),
			"/keys/with space/alice@web.example.com:2200",
			"/env/dir/id_all_local_" + home + "_%",
		},
		CertificateFiles:      []string{filepath.Join(home, ".ssh", "id_web-cert.pub"), "/c2"},
		IdentitiesOnly:        true,
		IdentityAgent:         filepath.Join(home, "agent.web.sock"),
		ProxyJump:             []string{"jump1", "bob@jump2:2022"},
		UserKnownHostsFiles:   []string{filepath.Join(home, ".ssh", "kh_web"), "/abs/kh_web.example.com_2200"},
		GlobalKnownHostsFiles: []string{"/etc/global_kh"},
		HostKeyAlias:          "webalias",
		StrictHostKeyChecking: "accept-new",
		ServerAliveInterval:   90 * time.Second,
		ServerAliveCountMax:   5,
		ConnectTimeout:        10 * time.Second,
		Network:               "tcp",
		ControlPath:           filepath.Join(home, ".ssh", "cm-alice@web.example.com:2200"),
		ControlMaster:         "yes",
	}
	want.tokens = h.tokens
	if !reflect.DeepEqual(h, want) {
		t.Errorf("web:\n got %+v\nwant %+v", h, want)
	}

	// The destination's user and port beat the config's.
	h, _, err = resolveWith(t, config, "carol@web:2")
	if err != nil {
		t.Fatal(err)
	}
	if h.User != "carol" || h.Port != 2 || h.IdentityFiles[1] != "/keys/with space/carol@web.example.com:2" {
		t.Errorf("carol@web:2: user %q port %d identity %q", h.User, h.Port, h.IdentityFiles[1])
	}

	// Another host only gets Host *.
	h, _, err = resolveWith(t, config, "other")
	if err != nil {
		t.Fatal(err)
	}
	if h.HostName != "other" || h.Port != 1 || h.User != "nobody" || h.StrictHostKeyChecking != "no" ||
		h.ServerAliveCountMax != 9 || h.ProxyJump != nil || h.IdentitiesOnly || len(h.IdentityFiles) != 1 {
		t.Errorf("other: %+v", h)
	}
}

func TestResolveHopConfigPatterns(t *testing.T) {
	const config = `
Host *.corp !bastion.corp
  User corpuser
Host a?c x y
  Port 1000
Host FOO
  Port 1001
Host foo
  Port 1002
Host *
  User fallback
  Port 1003
`
	cases := []struct {
		dest, user string
		port       int
	}{
		{"db.corp", "corpuser", 1003},
		{"bastion.corp", "fallback", 1003}, // negated: the whole Host line is skipped
		{"abc", "fallback", 1000},
		{"ac", "fallback", 1003}, // ? is exactly one character
		{"abbc", "fallback", 1003},
		{"y", "fallback", 1000}, // several patterns on a line
		{"foo", "fallback", 1002},
		{"FOO", "fallback", 1001}, // Host patterns are case-sensitive, as in ssh(1)
	}
	for _, c := range cases {
		h, _, err := resolveWith(t, config, c.dest)
		if err != nil {
			t.Fatal(err)
		}
		if h.User != c.user || h.Port != c.port {
			t.Errorf("%s: user %q port %d; want %q %d", c.dest, h.User, h.Port, c.user, c.port)
		}
	}
}

func TestResolveHopConfigMatchAndInclude(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	inc := filepath.Join(home, ".ssh", "conf.d")
	if err := os.MkdirAll(inc, 0o700); err != nil {
		t.Fatal(err)
	}
	// Included files are read in sorted order; the first value still wins.
	if err := os.WriteFile(filepath.Join(inc, "b.conf"), []byte("Host inc\n  Port 2002\n  User from-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, "a.conf"), []byte("Host inc\n  Port 2001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "never.conf"), []byte("Port 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := writeConfigFile(t, home, `
Include conf.d/*.conf
Host nomatch
  Include `+filepath.Join(home, "never.conf")+`
Host alias
  HostName Real.Example
Match host real.example
  Port 3000
Match all
  User everyone
  Port 3001
`)
	h, err := resolveHop("alias", p, home, "local")
	if err != nil {
		t.Fatal(err)
	}
	if h.HostName != "real.example" || h.Port != 3000 || h.User != "everyone" {
		t.Errorf("Match host (against HostName): %+v", h)
	}
	h, err = resolveHop("inc", p, home, "local")
	if err != nil {
		t.Fatal(err)
	}
	if h.Port != 2001 || h.User != "from-b" {
		t.Errorf("Include: port %d user %q; want 2001 from-b", h.Port, h.User)
	}
	h, err = resolveHop("real.example", p, home, "local")
	if err != nil || h.Port != 3000 {
		t.Errorf("Match host without HostName: %+v, %v", h, err)
	}

	// Every Match criterion of OpenSSH is read (issue #18): one such line
	// no longer fails every host, and "Match host foo exec ..." is two
	// criteria, not three host patterns.
	for line, port := range map[string]int{
		"Match user bob": 3, "Match user local": 2, "Match exec true": 2, "Match exec false": 3,
		"Match originalhost x": 3, "Match originalhost a": 2, "Match localuser local": 2,
		"Match host a exec \"true\"": 2, "Match host a exec \"false\"": 3, "Match !exec false": 2,
	} {
		p := writeConfigFile(t, home, line+"\n  Port 2\nHost a\n  Port 3\n")
		if h, err := resolveHop("a", p, home, "local"); err != nil || h.Port != port {
			t.Errorf("%s: port %v, %v; want %d", line, h, err, port)
		}
		if h, err := resolveHop("other", p, home, "local"); err != nil || (h.Port == 3) {
			t.Errorf("%s, another host: %+v, %v", line, h, err)
		}
	}
}

func TestResolveHopConfigSpecialValues(t *testing.T) {
	cases := []struct {
		name, config string
		check        func(*hop) bool
	}{
		{"ProxyJump none wins first", "Host *\n  ProxyJump none\n  ProxyJump x\n", func(h *hop) bool { return h.ProxyJump == nil }},
		{"ProxyCommand none blocks ProxyJump", "ProxyCommand none\nProxyJump x\n", func(h *hop) bool { return h.ProxyJump == nil }},
		{"ProxyJump blocks ProxyCommand", "ProxyJump x\nProxyCommand nc %h %p\n", func(h *hop) bool {
			return reflect.DeepEqual(h.ProxyJump, []string{"x"}) && h.ProxyCommand == ""
		}},
		{"ProxyCommand as written, tokens expanded", "HostName Real\nPort 2222\nUser bob\nProxyCommand=sh -c 'nc %h %p'  \"%r\" %n 100%%\n", func(h *hop) bool {
			return h.ProxyCommand == `sh -c 'nc real 2222'  "bob" h 100%` && h.ProxyJump == nil
		}},
		{"ProxyCommand blocks ProxyJump", "ProxyCommand nc %h %p\nProxyJump x\n", func(h *hop) bool { return h.ProxyJump == nil && h.ProxyCommand == "nc h 22" }},
		{"AddressFamily default", "", func(h *hop) bool { return h.Network == "tcp" }},
		{"AddressFamily inet6 first", "AddressFamily Inet6\nAddressFamily inet\n", func(h *hop) bool { return h.Network == "tcp6" }},
		{"IdentityFile none", "IdentityFile none\n", func(h *hop) bool { return h.IdentityFiles != nil && len(h.IdentityFiles) == 0 }},
		{"UserKnownHostsFile none", "UserKnownHostsFile none\n", func(h *hop) bool { return h.UserKnownHostsFiles != nil && len(h.UserKnownHostsFiles) == 0 }},
		{"GlobalKnownHostsFile none", "GlobalKnownHostsFile none\n", func(h *hop) bool { return h.GlobalKnownHostsFiles != nil && len(h.GlobalKnownHostsFiles) == 0 }},
		{"IdentityAgent none", "IdentityAgent none\n", func(h *hop) bool { return h.IdentityAgent == "none" }},
		{"IdentityAgent SSH_AUTH_SOCK", "IdentityAgent SSH_AUTH_SOCK\n", func(h *hop) bool { return h.IdentityAgent == "" }},
		{"IdentityAgent $VAR", "IdentityAgent $SSHDIAL_TEST_SOCK\n", func(h *hop) bool { return h.IdentityAgent == "/tmp/sock" }},
		{"IdentityAgent $UNSET", "IdentityAgent $SSHDIAL_TEST_UNSET\n", func(h *hop) bool { return h.IdentityAgent == "none" }},
		{"StrictHostKeyChecking off", "StrictHostKeyChecking off\n", func(h *hop) bool { return h.StrictHostKeyChecking == "no" }},
		{"StrictHostKeyChecking false", "StrictHostKeyChecking False\n", func(h *hop) bool { return h.StrictHostKeyChecking == "no" }},
		{"StrictHostKeyChecking true", "StrictHostKeyChecking true\n", func(h *hop) bool { return h.StrictHostKeyChecking == "yes" }},
		{"StrictHostKeyChecking ask", "StrictHostKeyChecking ask\n", func(h *hop) bool { return h.StrictHostKeyChecking == "ask" }},
		{"IdentitiesOnly true", "IdentitiesOnly true\n", func(h *hop) bool { return h.IdentitiesOnly }},
		{"IdentitiesOnly no first", "IdentitiesOnly no\nIdentitiesOnly yes\n", func(h *hop) bool { return !h.IdentitiesOnly }},
		{"ConnectTimeout none then 5", "ConnectTimeout none\nConnectTimeout 5\n", func(h *hop) bool { return h.ConnectTimeout == 5*time.Second }},
		{"ServerAliveInterval 1h", "ServerAliveInterval 1h\n", func(h *hop) bool { return h.ServerAliveInterval == time.Hour }},
		{"ServerAliveInterval 1.5", "ServerAliveInterval 1.5\n", func(h *hop) bool { return h.ServerAliveInterval == time.Second }},
		{"ServerAliveCountMax 0", "ServerAliveCountMax 0\n", func(h *hop) bool { return h.ServerAliveCountMax == 0 }},
		{"Key=Value", "Port=44\nUser = eq\n", func(h *hop) bool { return h.Port == 44 && h.User == "eq" }},
		{"User tokens", "User u-%n-%u\n", func(h *hop) bool { return h.User == "u-h-local" }},
		{"HostName of address", "HostName 10.0.0.1\n", func(h *hop) bool { return h.HostName == "10.0.0.1" && h.Alias == "h" }},
		{"UserKnownHostsFile first line only", "UserKnownHostsFile /a /b\nUserKnownHostsFile /c\n", func(h *hop) bool {
			return reflect.DeepEqual(h.UserKnownHostsFiles, []string{"/a", "/b"})
		}},
		{"quoted list", `UserKnownHostsFile "/a b" '/c d' /e\ f` + "\n", func(h *hop) bool {
			return reflect.DeepEqual(h.UserKnownHostsFiles, []string{"/a b", "/c d", "/e f"})
		}},
		{"comment after value", "Port 45 # the port\n", func(h *hop) bool { return h.Port == 45 }},
		{"%C", "IdentityFile /k/%C\n", func(h *hop) bool {
			hn, _ := os.Hostname()
			sum := sha1.Sum([]byte(hn + "h" + "22" + "local"))
			return h.IdentityFiles[0] == "/k/"+hex.EncodeToString(sum[:])
		}},
		{"%k %l %L %i %j", "ProxyJump j@jh:1\nHostKeyAlias KA\nIdentityFile /k/%k/%l/%L/%i/%j\n", func(h *hop) bool {
			hn, _ := os.Hostname()
			short, _, _ := strings.Cut(hn, ".")
			return h.IdentityFiles[0] == "/k/ka/"+hn+"/"+short+"/"+strconv.Itoa(os.Getuid())+"/jh"
		}},
	}
	t.Setenv("SSHDIAL_TEST_SOCK", "/tmp/sock")
	for _, c := range cases {
		h, _, err := resolveWith(t, c.config, "h")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !c.check(h) {
			t.Errorf("%s: %+v", c.name, h)
		}
	}
}

func TestResolveHopConfigErrors(t *testing.T) {
	cases := []struct{ config, dest, want string }{
		{"Port 0\n", "h", "out of range"},
		{"Port abc\n", "h", "not a number"},
		{"Host other\n  Port 70000\n", "h", "out of range"}, // checked even where it does not apply
		{"Port\n", "h", "missing argument"},
		{"Port 1 2\n", "h", "unexpected"},
		{"ServerAliveInterval 5x\n", "h", "invalid time"},
		{"ServerAliveInterval 1.5m\n", "h", "invalid time"},
		{"ConnectTimeout -1\n", "h", "invalid time"},
		{"ServerAliveCountMax many\n", "h", "integer"},
		{"StrictHostKeyChecking maybe\n", "h", "unsupported value"},
		{"IdentitiesOnly perhaps\n", "h", "unsupported value"},
		{"UserKnownHostsFile none /x\n", "h", "alone"},
		{"IdentityFile \"/unterminated\n", "h", "unterminated"},
		{"ProxyJump bad:port:x:\n", "h", "invalid ProxyJump"},
		{"ProxyJump a:0\n", "h", "invalid ProxyJump"},
		{"ProxyCommand nc %h %u\n", "h", "unknown token %u"}, // ProxyCommand takes %h %n %p %r
		{"AddressFamily inet4\n", "h", "unsupported value"},
		{"IdentityFile /k/%z\n", "h", "unknown token %z"},
		{"IdentityFile /k/%\n", "h", "'%' at the end"},
		{"IdentityFile /k/${SSHDIAL_SURELY_UNSET}\n", "h", "not set"},
		{"HostName %u\n", "h", "unknown token %u"}, // HostName takes only %h and %%
		{"HostName a%%b c\n", "h", "unexpected"},
		{"User %r\n", "h", "unknown token %r"},
		{"User x%n;\n", "h", "invalid character"},
		{"IdentityFile ~nosuchuser-sshdial/k\n", "h", "no such user"},
		{"", "ho st", "space or control"},
	}
	for _, c := range cases {
		_, _, err := resolveWith(t, c.config, c.dest)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q dest %q: error %v; want one containing %q", c.config, c.dest, err, c.want)
		}
	}
}

// TestResolveHopConfigAgainstOpenSSH compares resolveHop with `ssh -G`, which prints the
// configuration ssh(1) resolves. ssh(1) expands ~ and %d from the passwd entry, not $HOME, so
// home is that directory here.
func TestResolveHopConfigAgainstOpenSSH(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no ssh client")
	}
	me, err := osuser.Current()
	if err != nil {
		t.Skip(err)
	}
	home := me.HomeDir
	tmp := t.TempDir()
	t.Setenv("HOME", tmp)
	configs := []string{
		`
Host *.corp !bastion.corp
  User corpuser
  ProxyJump bastion.corp,ops@bastion2.corp:2222
  IdentityFile /keys/corp
Host a?c multi second
  Port 1000
  HostName %h.Example.NET
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/.ssh/kh_%n_%h_%p_%r_%u %d/x_%%_%C_%L_%l_%i
  UserKnownHostsFile /ignored
  IdentityFile /keys/one
  IdentityFile /keys/two
  CertificateFile /keys/one-cert.pub
  ServerAliveInterval 2m5s
  ConnectTimeout 7
  HostKeyAlias Alias.Example
Host FOO
  Port 1001
Host *
  StrictHostKeyChecking off
  ServerAliveCountMax 7
  IdentitiesOnly yes
  IdentityAgent none
  GlobalKnownHostsFile /etc/g1 /etc/g2
  Port 1003
`,
		`
Host x
  ProxyJump none
  ProxyJump j
  StrictHostKeyChecking true
  ConnectTimeout none
  ServerAliveInterval 30
Match host *.example.org
  User matched
Host y
  HostName real.example.org
Host *
  User = from-star
  IdentitiesOnly false
  StrictHostKeyChecking ask
`,
	}
	dests := []string{"db.corp", "bastion.corp", "abc", "ac", "multi", "second", "FOO", "foo",
		"bob@abc", "ssh://carol@abc:2022", "ssh://abc", "x", "y", "real.example.org", "dave@[::1]"}
	for ci, config := range configs {
		cfgPath := filepath.Join(tmp, "config"+strconv.Itoa(ci))
		if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, dest := range dests {
			sshDest := dest
			if strings.HasPrefix(dest, "dave@[") {
				sshDest = "dave@::1" // ssh(1) takes no brackets outside ssh:// URLs
			}
			cmd := exec.Command(sshPath, "-G", "-F", cfgPath, sshDest)
			cmd.Env = append(os.Environ(), "HOME="+tmp)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ssh -G -F config%d %s: %v", ci, sshDest, err)
			}
			g := parseSSHG(out)
			h, err := resolveHop(dest, cfgPath, home, me.Username)
			if err != nil {
				t.Errorf("config%d %s: %v", ci, dest, err)
				continue
			}
			ours := map[string]string{
				"hostname":              h.HostName,
				"port":                  strconv.Itoa(h.Port),
				"user":                  h.User,
				"userknownhostsfile":    strings.Join(h.UserKnownHostsFiles, " "),
				"globalknownhostsfile":  strings.Join(h.GlobalKnownHostsFiles, " "),
				"proxyjump":             strings.Join(h.ProxyJump, ","),
				"stricthostkeychecking": map[string]string{"yes": "true", "no": "false"}[h.StrictHostKeyChecking],
				"serveraliveinterval":   strconv.Itoa(int(h.ServerAliveInterval / time.Second)),
				"serveralivecountmax":   strconv.Itoa(h.ServerAliveCountMax),
				"connecttimeout":        "none",
				"identitiesonly":        map[bool]string{true: "yes", false: "no"}[h.IdentitiesOnly],
				"hostkeyalias":          h.HostKeyAlias,
				"identityagent":         h.IdentityAgent,
				"certificatefile":       strings.Join(h.CertificateFiles, " "),
			}
			if ours["stricthostkeychecking"] == "" {
				ours["stricthostkeychecking"] = h.StrictHostKeyChecking
			}
			if h.ConnectTimeout > 0 {
				ours["connecttimeout"] = strconv.Itoa(int(h.ConnectTimeout / time.Second))
			}
			if h.IdentityFiles != nil { // ssh -G lists its defaults when the config names none
				ours["identityfile"] = strings.Join(h.IdentityFiles, " ")
			}
			for k, v := range ours {
				if g[k] != v {
					t.Errorf("config%d %s: %s: ours %q, ssh -G %q", ci, dest, k, v, g[k])
				}
			}
		}
	}
}

// parseSSHG reads `ssh -G` output: a keyword and its value per line; repeated keywords
// (identityfile, certificatefile) are joined with spaces.
func parseSSHG(out []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if old, ok := m[k]; ok {
			v = old + " " + v
		}
		m[k] = v
	}
	return m
}
