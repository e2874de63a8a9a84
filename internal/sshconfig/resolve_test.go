package sshconfig

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// write writes text to dir/name and returns its path.
func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// resolveText resolves host with text as the -F file.
func resolveText(t *testing.T, text, host string, mod func(*Options)) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	o := Options{ConfigFile: write(t, dir, "config", text), Home: dir, LocalUser: "me", LocalHostName: "box.example", UID: "1000"}
	if mod != nil {
		mod(&o)
	}
	return Resolve(host, o)
}

func TestTokenize(t *testing.T) {
	cases := []struct {
		line, kw, rest string
		skip           bool
	}{
		{"Port 22", "port", "22", false},
		{"  Port=22", "port", "22", false},
		{"Port = 22", "port", "22", false},
		{"Port =22", "port", "22", false},
		{"Port==22", "port", "=22", false},
		{"PORT\t22 \t\f", "port", "22", false},
		{"# comment", "", "", true},
		{"   ", "", "", true},
		{"\"Port\" 22", "port", "22", false},
		{"Port", "port", "", false},
	}
	for _, c := range cases {
		kw, rest, skip, _ := splitLine(c.line)
		if kw != c.kw || rest != c.rest || skip != c.skip {
			t.Errorf("splitLine(%q) = %q, %q, %v; want %q, %q, %v", c.line, kw, rest, skip, c.kw, c.rest, c.skip)
		}
	}
	args := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`a b`, []string{"a", "b"}, true},
		{`"a b" 'c d' e\ f`, []string{"a b", "c d", "e f"}, true},
		{`a #comment`, []string{"a"}, true},
		{`a#notcomment`, []string{"a#notcomment"}, true},
		{`"#x" y`, []string{"#x", "y"}, true},
		{`"unterminated`, nil, false},
		{`a\qb`, []string{`a\qb`}, true},
		{`"a\"b"`, []string{`a"b`}, true},
	}
	for _, c := range args {
		got, ok := argvSplit(c.in)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("argvSplit(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestMatchExec(t *testing.T) {
	const cfg = `
Match host web exec "run %h %n %p %r %u %d %L %l %i %%"
    User fromexec
Match !exec "other"
    Port 2000
Match exec never host nomatch
    Port 3000
Host *
    Port 1000
`
	var ran []string
	hook := func(ctx context.Context, cmd string) (bool, error) {
		ran = append(ran, cmd)
		return strings.HasPrefix(cmd, "run "), nil
	}
	c, err := resolveText(t, cfg, "web", func(o *Options) { o.Exec = hook })
	if err != nil {
		t.Fatal(err)
	}
	// "Match exec never host nomatch" runs its command: no criterion
	// before it failed.
	wantRan := []string{"run web web 22 me me " + c.Tokens.D + " box box.example 1000 %", "other", "never"}
	if !reflect.DeepEqual(ran, wantRan) {
		t.Errorf("commands run: %q; want %q", ran, wantRan)
	}
	if c.User != "fromexec" || c.Port != 2000 || len(c.SkippedExec) != 0 {
		t.Errorf("user %q port %d skipped %q", c.User, c.Port, c.SkippedExec)
	}

	// With NoExec no command runs and no line with exec matches, negated
	// or not; the lines are named.
	ran = nil
	c, err = resolveText(t, cfg, "web", func(o *Options) { o.Exec, o.NoExec = hook, true })
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) != 0 {
		t.Errorf("NoExec ran %q", ran)
	}
	if c.User != "me" || c.Port != 1000 {
		t.Errorf("NoExec: user %q port %d; want me 1000", c.User, c.Port)
	}
	if len(c.SkippedExec) != 3 || !strings.HasSuffix(c.SkippedExec[0], " line 2") || !strings.HasSuffix(c.SkippedExec[2], " line 6") {
		t.Errorf("SkippedExec = %q; want lines 2, 4 and 6", c.SkippedExec)
	}

	// A hook error is an error of Resolve.
	_, err = resolveText(t, cfg, "web", func(o *Options) {
		o.Exec = func(context.Context, string) (bool, error) { return false, errors.New("boom") }
	})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("hook error: %v", err)
	}
}

func TestMatchExecShell(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	t.Setenv("SHELL", "/bin/sh")
	dir := t.TempDir()
	flag := filepath.Join(dir, "flag")
	cfg := "Match exec \"test -e " + flag + "\"\n  Port 1\nMatch exec \"touch " + dir + "/ran-%h\"\n  User u\n"
	c, err := resolveText(t, cfg, "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 22 || c.User != "u" {
		t.Errorf("port %d user %q; want 22 u", c.Port, c.User)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-h")); err != nil {
		t.Errorf("the exec command did not run through the shell: %v", err)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = resolveText(t, cfg, "h", nil); err != nil || c.Port != 1 {
		t.Errorf("with the flag file: %+v, %v", c, err)
	}
	// A command killed by a signal is an error, as in ssh.
	if _, err := resolveText(t, "Match exec \"kill -9 $$\"\n  Port 1\n", "h", nil); err == nil {
		t.Error("a command killed by a signal is no error")
	}
}

func TestFilesAndCommandLine(t *testing.T) {
	dir := t.TempDir()
	user := write(t, dir, "user", "Host *\n  Port 1\n  IdentityFile /u\n")
	system := write(t, dir, "system", "Host *\n  Port 2\n  User sys\n  IdentityFile /s\n  IdentityFile /u\n")
	base := Options{Home: dir, LocalUser: "me", UserConfig: user, SystemConfig: system}
	c, err := Resolve("h", base)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 1 || c.User != "sys" || !reflect.DeepEqual(c.IdentityFiles, []string{"/u", "/s", "/u"}) {
		t.Errorf("user then system: port %d user %q ids %q", c.Port, c.User, c.IdentityFiles)
	}
	// -F replaces both.
	o := base
	o.ConfigFile = write(t, dir, "f", "User ffile\n")
	if c, err = Resolve("h", o); err != nil || c.Port != 22 || c.User != "ffile" {
		t.Errorf("-F: %+v, %v", c, err)
	}
	o.ConfigFile = "none"
	if c, err = Resolve("h", o); err != nil || c.Port != 22 || c.User != "me" {
		t.Errorf("-F none: %+v, %v", c, err)
	}
	o.ConfigFile = filepath.Join(dir, "missing")
	if _, err = Resolve("h", o); err == nil {
		t.Error("-F missing file: no error")
	}
	// A missing user or system file is no error.
	o = base
	o.UserConfig, o.SystemConfig = filepath.Join(dir, "nouser"), filepath.Join(dir, "nosystem")
	if _, err = Resolve("h", o); err != nil {
		t.Errorf("missing default files: %v", err)
	}
	// Command-line lines come first; the destination's user and port next.
	o = base
	o.CommandLine = []string{"Port=7", "IdentityFile /cli", "StrictHostKeyChecking=accept-new"}
	o.User, o.Port = "dest", 9
	if c, err = Resolve("h", o); err != nil || c.Port != 7 || c.User != "dest" || c.IdentityFiles[0] != "/cli" || c.StrictHostKeyChecking != "accept-new" {
		t.Errorf("command line: %+v, %v", c, err)
	}
	for _, line := range []string{"Host x", "Match all", "Include /x", "Bogus 1", "Port 0"} {
		o.CommandLine = []string{line}
		if _, err := Resolve("h", o); err == nil {
			t.Errorf("command line %q: no error", line)
		}
	}
	// A user file others may write is refused, as ssh does; -F is not checked.
	if err := os.Chmod(user, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve("h", base); err == nil || !strings.Contains(err.Error(), "permissions") {
		t.Errorf("world-writable user config: %v", err)
	}
	o = base
	o.ConfigFile = user
	if _, err := Resolve("h", o); err != nil {
		t.Errorf("world-writable -F file: %v", err)
	}
}

func TestIncludeAndUnknown(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, ".ssh/inc/b.conf", "Host h\n  User b\n")
	write(t, dir, ".ssh/inc/a.conf", "Host h\n  Port 5\nMatch all\n  User a-all\n")
	write(t, dir, "loop.conf", "Include "+filepath.Join(dir, "loop.conf")+"\n")
	c, err := resolveText(t, "Include inc/*.conf\nHost nomatch\n  Include ~/.ssh/inc/*.conf\nUser top\n", "h", func(o *Options) { o.Home = dir })
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 5 || c.User != "a-all" { // a.conf first: its Match all applies
		t.Errorf("include: port %d user %q; want 5 a-all", c.Port, c.User)
	}
	if _, err := resolveText(t, "Include "+filepath.Join(dir, "loop.conf")+"\n", "h", nil); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("include loop: %v", err)
	}
	// Unknown keywords are errors, anywhere, unless IgnoreUnknown lists
	// them (before they appear); keywords ssh knows are accepted.
	if _, err := resolveText(t, "Host other\n  Bogus yes\n", "h", nil); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown keyword: %v", err)
	}
	if _, err := resolveText(t, "IgnoreUnknown bog*,x\nBogus yes\nForwardAgent yes\nLogLevel DEBUG3\nSendEnv LANG\n", "h", nil); err != nil {
		t.Errorf("IgnoreUnknown: %v", err)
	}
	if _, err := resolveText(t, "Bogus yes\nIgnoreUnknown bogus\n", "h", nil); err == nil {
		t.Error("IgnoreUnknown after the keyword: no error")
	}
	// A system file may not Include ~.
	sys := write(t, dir, "sys", "Include ~/x\n")
	if _, err := Resolve("h", Options{SystemConfig: sys, Home: dir, LocalUser: "me"}); err == nil {
		t.Error("~ in a system Include: no error")
	}
}

func TestMatchCriteria(t *testing.T) {
	cfg := `
Host alias
    HostName Real.Example.COM
Match originalhost alias user bob
    Port 1
Match host real.example.com localuser me
    IdentityFile /k1
Match host real.example.com localuser !me
    IdentityFile /k2
Match canonical
    IdentityFile /never
`
	c, err := resolveText(t, cfg, "alias", func(o *Options) { o.User = "bob" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 1 || c.HostName != "real.example.com" || !reflect.DeepEqual(c.IdentityFiles, []string{"/k1"}) {
		t.Errorf("port %d hostname %q ids %q", c.Port, c.HostName, c.IdentityFiles)
	}
	// Match final makes a second pass, where Host matches the final name
	// and canonical and final match.
	c, err = resolveText(t, cfg+"Match final host real.example.com\n  User fin\nHost real.example.com\n  ConnectTimeout 9\n", "alias", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "fin" || c.ConnectTimeout != 9 || !reflect.DeepEqual(c.IdentityFiles, []string{"/k1", "/never"}) {
		t.Errorf("final pass: user %q timeout %d ids %q", c.User, c.ConnectTimeout, c.IdentityFiles)
	}
	for _, bad := range []string{"Match", "Match bogus x", "Match host", "Match all host x", "Match exec \"x", "Match localnetwork nonsense"} {
		if _, err := resolveText(t, bad+"\n", "h", nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// tagged matches Tag (OpenSSH 9.4).
	c, err = resolveText(t, "Tag work\nMatch tagged w*\n  Port 5\nMatch !tagged work\n  Port 6\n", "h", nil)
	if err != nil || c.Port != 5 {
		t.Errorf("tagged: %+v, %v", c, err)
	}
	if c, err = resolveText(t, "Match tagged work\n  Port 5\n", "h", nil); err != nil || c.Port != 22 {
		t.Errorf("tagged without Tag: %+v, %v", c, err)
	}
	// localnetwork matches the local interfaces' addresses.
	old := interfaceAddrs
	defer func() { interfaceAddrs = old }()
	interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("192.168.7.20"), Mask: net.CIDRMask(24, 32)}}, nil
	}
	c, err = resolveText(t, "Match localnetwork 10.0.0.0/8,192.168.7.0/24\n  Port 7\nMatch !localnetwork 192.168.7.0/24\n  Port 8\n", "h", nil)
	if err != nil || c.Port != 7 {
		t.Errorf("localnetwork: %+v, %v", c, err)
	}
}

func TestCanonicalize(t *testing.T) {
	cfg := "CanonicalizeHostname yes\nCanonicalDomains a.example b.example\nMatch canonical host short.b.example\n  User canon\n"
	var looked []string
	lookup := func(ctx context.Context, name string) bool {
		looked = append(looked, name)
		return name == "short.b.example."
	}
	c, err := resolveText(t, cfg, "short", func(o *Options) { o.LookupHost = lookup })
	if err != nil {
		t.Fatal(err)
	}
	if c.HostName != "short.b.example" || c.User != "canon" || c.CanonicalizeHostname != "true" {
		t.Errorf("hostname %q user %q", c.HostName, c.User)
	}
	if !reflect.DeepEqual(looked, []string{"short.a.example.", "short.b.example."}) {
		t.Errorf("looked up %q", looked)
	}
	// Not found, with fallback off: an error.
	if _, err := resolveText(t, "CanonicalizeFallbackLocal no\n"+cfg, "nope", func(o *Options) { o.LookupHost = lookup }); err == nil {
		t.Error("unresolvable with CanonicalizeFallbackLocal no: no error")
	}
	// Too many dots, or a proxy: not canonicalized.
	looked = nil
	if c, err := resolveText(t, cfg, "a.b.c", func(o *Options) { o.LookupHost = lookup }); err != nil || c.HostName != "a.b.c" || len(looked) != 0 {
		t.Errorf("a.b.c: %+v %v %q", c, err, looked)
	}
	if c, err := resolveText(t, "ProxyJump j\n"+cfg, "short", func(o *Options) { o.LookupHost = lookup }); err != nil || c.HostName != "short" {
		t.Errorf("with ProxyJump: %+v %v", c, err)
	}
	// As ssh keeps them (valid_domain with makelower): in lower case,
	// without a final '.'.
	looked = nil
	c, err = resolveText(t, "CanonicalizeHostname yes\nCanonicalDomains A.Example. B.EXAMPLE\n", "short", func(o *Options) { o.LookupHost = lookup })
	if err != nil || c.HostName != "short.b.example" {
		t.Errorf("domains in upper case: %+v, %v", c, err)
	}
	if !reflect.DeepEqual(looked, []string{"short.a.example.", "short.b.example."}) {
		t.Errorf("domains in upper case: looked up %q", looked)
	}
}

func TestValuesAndDump(t *testing.T) {
	t.Setenv("SSHCONFIG_TEST_DIR", "/env")
	cfg := `
Host h
  HostName %h.Example.COM
  User alice
  Port 2200
  IdentityFile ~/.ssh/id_%h
  CertificateFile /c
  IdentitiesOnly yes
  IdentityAgent ${SSHCONFIG_TEST_DIR}/agent-%r
  ProxyJump bob@[::1]:2022
  UserKnownHostsFile ~/kh_%n %d/kh2
  GlobalKnownHostsFile ~/g %h
  StrictHostKeyChecking off
  HostKeyAlias KA
  ServerAliveInterval 1m30s
  ServerAliveCountMax 5
  ConnectTimeout 10
  AddressFamily inet6
  BatchMode yes
  ExitOnForwardFailure yes
  GatewayPorts yes
  ControlMaster autoask
  ControlPath ~/cm-%C
`
	c, err := resolveText(t, cfg, "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	home := c.Tokens.D
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `host h
user alice
hostname h.example.com
port 2200
addressfamily inet6
batchmode yes
canonicalizehostname false
controlmaster autoask
exitonforwardfailure yes
gatewayports yes
identitiesonly yes
stricthostkeychecking false
numberofpasswordprompts 3
serveralivecountmax 5
serveraliveinterval 90
controlpath ` + home + `/cm-` + ConnectionHash("box.example", "h.example.com", "2200", "alice", "::1") + `
hostkeyalias ka
identityagent /env/agent-alice
identityfile ~/.ssh/id_%h
certificatefile /c
globalknownhostsfile ~/g %h
userknownhostsfile ` + home + `/kh_h ` + home + `/kh2
connecttimeout 10
proxyjump bob@[::1]:2022
`
	if b.String() != want {
		t.Errorf("WriteTo:\n%s\nwant:\n%s", b.String(), want)
	}
	p, err := c.Tokens.ExpandPath(c.IdentityFiles[0])
	if err != nil || p != home+"/.ssh/id_h.example.com" {
		t.Errorf("ExpandPath: %q, %v", p, err)
	}
	// "none" is no file; it is printed as ssh prints it.
	c, err = resolveText(t, "UserKnownHostsFile none\nGlobalKnownHostsFile none\nControlPath none\nProxyCommand none\n", "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.UserKnownHostsFiles) != 0 || c.Get("userknownhostsfile")[0] != "none" || c.ControlPath != "" || c.ProxyCommand != "" {
		t.Errorf("none: %+v", c)
	}
	// "none" leaves a time unset for later lines; ProxyJump none does not
	// stop a later ProxyCommand; ProxyJump does.
	c, err = resolveText(t, "ConnectTimeout none\nConnectTimeout 5\nProxyJump none\nProxyCommand nc %h %p\n", "h", nil)
	if err != nil || c.ConnectTimeout != 5 || c.ProxyCommand != "nc %h %p" || c.ProxyJump != "" {
		t.Errorf("none then a value: %+v, %v", c, err)
	}
	c, err = resolveText(t, "ProxyJump j1,j2\nProxyCommand nc %h %p\n", "h", nil)
	if err != nil || c.ProxyCommand != "" || c.ProxyJump != "j1,j2" || c.Tokens.J != "j2" {
		t.Errorf("ProxyJump then ProxyCommand: %+v, %v", c, err)
	}
	// Defaults.
	c, err = resolveText(t, "", "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	home = c.Tokens.D
	if !c.IdentityFilesDefault || c.StrictHostKeyChecking != "ask" || c.ConnectTimeout != -1 || c.ServerAliveCountMax != 3 ||
		!reflect.DeepEqual(c.UserKnownHostsFiles, []string{home + "/.ssh/known_hosts", home + "/.ssh/known_hosts2"}) {
		t.Errorf("defaults: %+v", c)
	}
}

func TestExpandErrors(t *testing.T) {
	tk := &Tokens{H: "h", D: "/home/me"}
	for _, c := range []struct{ in, allowed, want string }{
		{"%z", PathTokens, "unknown token %z"},
		{"a%", PathTokens, "at the end"},
		{"%u", ProxyCommandTokens, "unknown token %u"},
		{"${SSHCONFIG_SURELY_UNSET}", PathTokens, "not set"},
		{"~nosuchuser-sshconfig/x", PathTokens, "no such user"},
	} {
		if _, err := tk.Expand(c.in, c.allowed, true, true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Expand(%q): %v; want %q", c.in, err, c.want)
		}
	}
	if got, _ := ExpandTilde("~/a//b", "/home/me/"); got != "/home/me/a//b" {
		t.Errorf("ExpandTilde = %q", got)
	}
}

func TestValueErrors(t *testing.T) {
	for _, line := range []string{
		"Port 0", "Port abc", "Port 1 2", "Port", "ServerAliveInterval 5x", "ConnectTimeout -1",
		"ServerAliveCountMax many", "StrictHostKeyChecking maybe", "IdentitiesOnly perhaps",
		"UserKnownHostsFile none /x", "IdentityFile \"/unterminated", "ProxyJump a:b:c", "ProxyJump a:0",
		"AddressFamily inet4", "ControlMaster sometimes", "IdentityAgent $BAD-NAME",
		"Host other\n  Port 70000",
	} {
		if _, err := resolveText(t, line+"\n", "h", nil); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
	if _, err := Resolve("-oProxyCommand=x", Options{}); err == nil {
		t.Error("host starting with '-': no error")
	}
}

// TestProxyJumpErrorHidesPasswords: what ends a ProxyJump value, or a
// hop, inside an ssh:// URL's password (a blank, a NUL, ",ssh://") leaves
// a piece of the password where a host or port is read; the error then
// shows none of the value after "ssh://".
func TestProxyJumpErrorHidesPasswords(t *testing.T) {
	for _, line := range []string{
		"ProxyJump ssh://u:SEKRIT @h",
		"ProxyJump ssh://u:SEKRIT,ssh://@h",
		"ProxyJump ssh://u:SEK\x00RIT@h",
		"ProxyJump ssh://u:SEKRIT\t@h",
		"ProxyJump j,ssh://u:SEKRIT @h",
	} {
		_, err := resolveText(t, line+"\n", "h", nil)
		if err == nil {
			t.Errorf("%q: no error", line)
			continue
		}
		if strings.Contains(err.Error(), "SEK") {
			t.Errorf("%q: error %q shows the password", line, err)
		}
		// As the command shows the line.
		if shown := RedactDestinations(strings.TrimPrefix(line, "ProxyJump ")); strings.Contains(shown, "SEK") {
			t.Errorf("RedactDestinations(%q) = %q", line, shown)
		}
	}
}
