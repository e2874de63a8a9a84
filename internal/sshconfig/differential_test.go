package sshconfig

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// comparedKeys are the keys the differential tests compare with ssh -G:
// every key sshdial uses.
var comparedKeys = []string{
	"hostname", "user", "port", "proxyjump", "proxycommand", "identityfile",
	"certificatefile", "identitiesonly", "identityagent", "userknownhostsfile",
	"globalknownhostsfile", "stricthostkeychecking", "hostkeyalias",
	"serveraliveinterval", "serveralivecountmax", "connecttimeout",
	"addressfamily", "batchmode", "exitonforwardfailure", "controlpath",
	"controlmaster", "gatewayports", "canonicalizehostname",
	"preferredauthentications", "numberofpasswordprompts",
}

// sshG is the ssh client as an oracle: it runs ssh -G.
type sshG struct {
	path string
	me   *osuser.User
	home string // a scratch $HOME (ssh takes ~ from the passwd entry anyway)
}

// newSSHG finds ssh, or skips the test (fails when SSHDIAL_REQUIRE_SSHD is
// set).
func newSSHG(t *testing.T) *sshG {
	t.Helper()
	p, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("SSHDIAL_REQUIRE_SSHD") != "" {
			t.Fatalf("ssh not found and SSHDIAL_REQUIRE_SSHD is set: %v", err)
		}
		t.Skip("no ssh client")
	}
	me, err := osuser.Current()
	if err != nil {
		t.Fatal(err)
	}
	return &sshG{path: p, me: me, home: t.TempDir()}
}

// run runs ssh -G with args; ok is false when ssh refuses (exit status not 0).
func (g *sshG) run(t *testing.T, args ...string) (map[string][]string, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.path, append([]string{"-G"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+g.home, "SHELL=/bin/sh")
	cmd.Stdin = nil
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ssh -G %q: timed out", args)
	}
	if err != nil {
		return nil, errb.String(), false
	}
	return parseG(out.Bytes()), errb.String(), true
}

// parseG reads ssh -G output: each key's values, one per line.
func parseG(out []byte) map[string][]string {
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		m[k] = append(m[k], v)
	}
	return m
}

// destination is a destination as ssh takes it, split for Resolve.
type destination struct {
	text       string // as given to ssh
	user, host string
	port       int
}

// parseDest splits [user@]host and ssh://[user@]host[:port] as ssh does
// (no host:port outside ssh://).
func parseDest(d string) destination {
	r := destination{text: d}
	s := d
	if strings.HasPrefix(s, "ssh://") {
		u, h, p, err := ParseSSHURI(s[6:])
		if err != nil {
			panic(err)
		}
		r.user, r.host = u, h
		if p > 0 {
			r.port = p
		}
		return r
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		r.user, s = s[:i], s[i+1:]
	}
	r.host = s
	return r
}

// ours resolves like `ssh -G -F cfg opts... dest` (the -o options in opts).
func (g *sshG) ours(cfg string, opts []string, d destination) (*Config, error) {
	o := Options{
		ConfigFile:  cfg,
		Home:        g.me.HomeDir,
		IncludeHome: g.home,
		LocalUser:   g.me.Username,
		User:        d.user,
		Port:        d.port,
		ExecStderr:  nil,
		CommandLine: nil,
	}
	for i := 0; i < len(opts); i++ {
		if opts[i] == "-o" && i+1 < len(opts) {
			o.CommandLine = append(o.CommandLine, opts[i+1])
			i++
		}
	}
	return Resolve(d.host, o)
}

// compare checks every compared key; it returns the disagreements. Two
// documented deviations are allowed for: %C hashes %j (OpenSSH 9.6 and
// later; 9.2 does not), and Debian's ssh makes ServerAliveInterval 300 by
// default under BatchMode yes (a Debian patch; upstream does not).
func compare(c *Config, g map[string][]string) []string {
	var diffs []string
	for _, k := range comparedKeys {
		ours := c.Get(k)
		theirs := g[k]
		if c.Tokens.J != "" {
			old := ConnectionHash(c.Tokens.Ll, c.Tokens.H, c.Tokens.P, c.Tokens.R, "")
			for i := range ours {
				ours[i] = strings.ReplaceAll(ours[i], c.Tokens.C, old)
			}
		}
		if k == "serveraliveinterval" && c.BatchMode && reflect.DeepEqual(ours, []string{"0"}) && reflect.DeepEqual(theirs, []string{"300"}) {
			continue
		}
		if k == "identityagent" || k == "controlpath" || k == "hostkeyalias" || k == "proxycommand" || k == "proxyjump" || k == "certificatefile" {
			if len(ours) == 0 && len(theirs) == 0 {
				continue
			}
		}
		if !reflect.DeepEqual(ours, theirs) {
			diffs = append(diffs, fmt.Sprintf("%s: ours %q, ssh -G %q", k, ours, theirs))
		}
	}
	return diffs
}

// corpusCase is one config of testdata/corpus: the file with @DIR@
// replaced, its destinations and -o options.
type corpusCase struct {
	name  string
	text  string
	dests []string
	opts  []string
}

// defaultDests are tried with every corpus config besides its own.
var defaultDests = []string{"plain", "bob@plain", "ssh://carol@plain:2222"}

func loadCorpus(t *testing.T, dir string) []corpusCase {
	t.Helper()
	names, err := filepath.Glob("testdata/corpus/*.conf")
	if err != nil || len(names) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	sort.Strings(names)
	var cases []corpusCase
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{name: filepath.Base(n), text: strings.ReplaceAll(string(b), "@DIR@", dir)}
		for _, line := range strings.Split(c.text, "\n") {
			if v, ok := strings.CutPrefix(line, "#! dests:"); ok {
				c.dests = append(c.dests, strings.Fields(v)...)
			}
			if v, ok := strings.CutPrefix(line, "#! opts:"); ok {
				c.opts = append(c.opts, strings.Fields(v)...)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// setupDir makes the files the corpus refers to under dir: included
// configs and the flag files of Match exec "test -e".
func setupDir(t *testing.T, dir, home string) {
	t.Helper()
	files, err := filepath.Glob("testdata/include/*")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("@DIR@"), []byte(dir))
		if err := os.WriteFile(filepath.Join(dir, "conf.d", filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Relative Include paths are in ~/.ssh, where ~ is $HOME for ssh's
	// glob.
	rel := filepath.Join(home, ".ssh", "rel")
	if err := os.MkdirAll(rel, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rel, "a.conf"), []byte("Host relhost\n  User fromrel\n  Port 4242\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vpn-up"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDifferentialCorpus compares Resolve with ssh -G for every config of
// testdata/corpus and several destinations each.
func TestDifferentialCorpus(t *testing.T) {
	g := newSSHG(t)
	dir := t.TempDir()
	setupDir(t, dir, g.home)
	cases := loadCorpus(t, dir)
	if len(cases) < 30 {
		t.Errorf("corpus has %d configs; want 30 or more", len(cases))
	}
	refused, total := 0, 0
	defer func() {
		// The corpus is of configs people use: ssh refusing many of them
		// would make agreeing cheap.
		if refused > 3 {
			t.Errorf("ssh -G refuses %d of %d corpus runs", refused, total)
		}
	}()
	for _, c := range cases {
		cfg := filepath.Join(dir, c.name)
		if err := os.WriteFile(cfg, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, d := range append(append([]string{}, c.dests...), defaultDests...) {
			args := append(append([]string{"-F", cfg}, c.opts...), d)
			want, stderr, ok := g.run(t, args...)
			total++
			if !ok {
				refused++
				t.Logf("%s %s: ssh -G refuses: %s", c.name, d, strings.TrimSpace(stderr))
			}
			got, err := g.ours(cfg, c.opts, parseDest(d))
			switch {
			case !ok && err == nil:
				t.Errorf("%s %s: ssh -G refuses (%s), we do not", c.name, d, strings.TrimSpace(stderr))
			case ok && err != nil:
				t.Errorf("%s %s: we refuse (%v), ssh -G does not", c.name, d, err)
			case ok:
				for _, diff := range compare(got, want) {
					t.Errorf("%s %s: %s", c.name, d, diff)
				}
			}
		}
	}
}

// fuzzLines are realistic config lines the generated configs are made of.
var fuzzLines = []string{
	"Host *", "Host web", "Host web*", "Host *.corp !bastion.corp", "Host a?c", "Host WEB", "Host db web",
	"Host !web *", "host \"db\"", "Host=web",
	"Match all", "Match host web", "Match host *.corp", "Match originalhost web", "Match user bob",
	"Match !user bob", "Match localuser root", "Match localuser nobody", "Match exec \"test -e @DIR@/vpn-up\"",
	"Match !exec \"test -e @DIR@/vpn-up\"", "Match exec true", "Match exec false", "Match final",
	"Match canonical", "Match final host web.example.com", "Match host web exec \"true\"",
	"Match originalhost web user carol", "Match host=db", "Match !host web", "Match exec \"test %h = web\"",
	"Match exec \"test %n = db\" host db",
	"HostName %h.example.com", "HostName real.example.org", "HostName 10.1.2.3", "Hostname WEB.Example.COM",
	"User alice", "User=bob", "user \"carol\"", "Port 2200", "Port=2022", "port 22",
	"IdentityFile ~/.ssh/id_%h", "IdentityFile /keys/%r@%h", "IdentityFile \"/keys/with space\"", "identityfile ~/.ssh/id_ed25519",
	"CertificateFile ~/.ssh/cert-%r", "IdentitiesOnly yes", "IdentitiesOnly no",
	"IdentityAgent ~/.ssh/agent.%h", "IdentityAgent none", "IdentityAgent SSH_AUTH_SOCK",
	"ProxyJump jump1", "ProxyJump bob@jump2:2022,jump3", "ProxyJump none", "ProxyCommand nc %h %p",
	"ProxyCommand ssh -W %h:%p gw # comment", "ProxyCommand none",
	"UserKnownHostsFile ~/.ssh/kh_%h /tmp/kh2", "UserKnownHostsFile none", "GlobalKnownHostsFile /etc/g1 /etc/g2",
	"StrictHostKeyChecking accept-new", "StrictHostKeyChecking no", "StrictHostKeyChecking yes", "StrictHostKeyChecking off",
	"HostKeyAlias Alias.%h", "HostKeyAlias myalias", "ServerAliveInterval 30", "ServerAliveInterval 1m",
	"ServerAliveCountMax 5", "PreferredAuthentications keyboard-interactive,password", "PreferredAuthentications publickey",
	"NumberOfPasswordPrompts 0", "NumberOfPasswordPrompts 1", "ConnectTimeout 10", "ConnectTimeout none", "AddressFamily inet", "AddressFamily inet6",
	"BatchMode yes", "ExitOnForwardFailure yes", "GatewayPorts yes",
	"ControlPath ~/.ssh/cm-%C", "ControlPath /tmp/cm-%r@%h:%p", "ControlPath none", "ControlMaster auto", "ControlMaster autoask",
	"ForwardAgent yes", "LogLevel ERROR", "SendEnv LANG LC_*", "Compression yes", "ServerAliveInterval=15",
	"IgnoreUnknown XBogusKey", "XBogusKey yes", "CanonicalizeHostname yes", "CanonicalDomains example.invalid",
	"CanonicalizeFallbackLocal yes", "  # a comment", "", "Port 22 # trailing comment",
	"HostName \"quoted#notacomment.example\"",
}

// fuzzOptions are -o lines for the generated runs.
var fuzzOptions = []string{
	"Port=2022", "User=cliuser", "User cli2", "HostName=cli.example.com", "ProxyJump=none", "ProxyJump=jcli",
	"ProxyCommand=nc %h %p", "IdentityFile=/keys/cli", "UserKnownHostsFile=~/.ssh/cli_kh", "UserKnownHostsFile=none",
	"StrictHostKeyChecking=no", "ServerAliveInterval=7", "ConnectTimeout 3", "AddressFamily=inet6",
	"ControlPath=/tmp/cli-%h", "ControlMaster=auto", "BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none",
	"HostKeyAlias=cliAlias", "CanonicalizeHostname=no", "ForwardAgent=yes", "Bogus=1", "Port=0",
}

// fuzzBadLines are lines ssh refuses, or nearly so.
var fuzzBadLines = []string{
	"Port 0", "Port abc", "Port 65536", "Bogus yes", "Match bogus x", "Match", "Host", "IdentityFile",
	"StrictHostKeyChecking maybe", "Match all host x", "Match host", "UserKnownHostsFile none /x",
	"ProxyJump a:b:c", "User \"unterminated", "Port 22 23", "AddressFamily inet4", "ServerAliveCountMax -1",
	"ConnectTimeout 5x", "IdentitiesOnly perhaps", "ControlMaster sometimes", "Match exec", "Match !all",
	"Match host a all", "Match user", "IgnoreUnknown Bogus", "Port=", "Include", "Match exec \"exit 3\"",
	"CanonicalizeHostname maybe", "BatchMode 1", "Port 22#c", "ProxyJump ,", "ProxyJump @h",
}

// TestDifferentialGenerated compares Resolve with ssh -G for configs made
// of random realistic lines: a bounded, seeded run (SSHDIAL_FUZZ_SEED,
// SSHDIAL_FUZZ_COUNT to change).
func TestDifferentialGenerated(t *testing.T) {
	g := newSSHG(t)
	dir := t.TempDir()
	setupDir(t, dir, g.home)
	seed := int64(1)
	if s, err := strconv.ParseInt(os.Getenv("SSHDIAL_FUZZ_SEED"), 10, 64); err == nil {
		seed = s
	}
	count := 150
	if testing.Short() {
		count = 30
	}
	if n, err := strconv.Atoi(os.Getenv("SSHDIAL_FUZZ_COUNT")); err == nil {
		count = n
	}
	rng := rand.New(rand.NewSource(seed))
	deadline := time.Now().Add(90 * time.Second)
	dests := []string{"web", "db", "WEB", "bastion.corp", "x.corp", "bob@web", "ssh://carol@db:2222", "abc"}
	fails, runs, refused := 0, 0, 0
	defer func() {
		t.Logf("%d runs, %d refused by ssh -G", runs, refused)
		if runs > 20 && refused*2 > runs {
			t.Errorf("ssh -G refuses %d of %d generated runs: too few comparisons", refused, runs)
		}
	}()
	for i := 0; i < count && time.Now().Before(deadline) && fails < 10; i++ {
		n := 3 + rng.Intn(14)
		var b strings.Builder
		for j := 0; j < n; j++ {
			b.WriteString(strings.ReplaceAll(fuzzLines[rng.Intn(len(fuzzLines))], "@DIR@", dir) + "\n")
		}
		text := b.String()
		if rng.Intn(5) == 0 {
			// A line ssh refuses, or that is close to one: both must agree.
			lines := strings.SplitAfter(text, "\n")
			at := rng.Intn(len(lines))
			lines = append(lines[:at], append([]string{fuzzBadLines[rng.Intn(len(fuzzBadLines))] + "\n"}, lines[at:]...)...)
			text = strings.Join(lines, "")
		}
		b.Reset()
		b.WriteString(text)
		cfg := filepath.Join(dir, fmt.Sprintf("gen%d.conf", i))
		if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		var opts []string
		for n := rng.Intn(3); n > 0; n-- {
			opts = append(opts, "-o", fuzzOptions[rng.Intn(len(fuzzOptions))])
		}
		for k := 0; k < 2; k++ {
			d := dests[rng.Intn(len(dests))]
			want, stderr, ok := g.run(t, append(append([]string{"-F", cfg}, opts...), d)...)
			runs++
			if !ok {
				refused++
			}
			got, err := g.ours(cfg, opts, parseDest(d))
			var diffs []string
			switch {
			case !ok && err == nil:
				diffs = []string{"ssh -G refuses (" + strings.TrimSpace(stderr) + "), we do not"}
			case ok && err != nil:
				diffs = []string{fmt.Sprintf("we refuse (%v), ssh -G does not", err)}
			case ok:
				diffs = compare(got, want)
			}
			if len(diffs) > 0 {
				fails++
				t.Errorf("seed %d config %d dest %s opts %q:\n%s\n%s", seed, i, d, opts, b.String(), strings.Join(diffs, "\n"))
			}
		}
	}
}

// edgeLines are single lines at the edges of ssh's syntax; each is tried
// before "  Port 1111" against ssh -G.
var edgeLines = []string{
	"Port +22", "Port \" 22\"", "Port -0", "Port 022", "Port 0x16", "ServerAliveCountMax +3", "ServerAliveCountMax 03",
	"ConnectTimeout 5 ", "Match host h # c", "Host h # c", "HostName %%x", "IdentityFile ~", "ProxyJump h # c",
	"ProxyJump a, b", "ProxyJump a;b", "ProxyJump -x@h", "ProxyJump 'u'@h", "ProxyJump a b", "ProxyJump \"a b\"", "ProxyJump a#b", "ProxyJump =a b", "ProxyJump a,,b", `User ""`, `Port "22"`, `IdentityFile ""`, `ControlPath ""`, "Include",
	`HostName ""`, "Match all # c", `Match exec "exit 3"`, "Match user root,bob localuser root", "Host *", `Host ""`,
	`UserKnownHostsFile ""`, "ProxyCommand=", "Match host=h", "Match host = h", "Match host == h", "Match host h,",
	"Match !all", "Match all all", "Match canonical all", "Match final all", "Match user", "Match exec", "Host h h2 !h",
	"Host !h", "Host !h *", `Host "h h2"`, "Host h\\ x", "Host=h", "Host= h", "HOST=H", "\tHost\th", " = Host h",
	"Port=22=", "Port 22#", "Port 22 #", "Port 2#2", "#Port 22", "  # Port 22", "Port\t\t2200", "Port \"22\" # c",
	"HostName host.example.com.", "HostName HOST.Example.Com", "HostName 10.0.0.1", "HostName ::1", "HostName %h.%h",
	"HostName %h%%", "User a b", "IdentityFile /a /b", "IdentityFile '/a b'", `IdentityFile "/a\"b"`,
	`IdentityFile /a\ b`, "CertificateFile none", "IdentityFile none", "UserKnownHostsFile /a none", "GlobalKnownHostsFile none",
	"StrictHostKeyChecking Accept-New", "StrictHostKeyChecking ASK", "AddressFamily INET", "ControlMaster AUTO",
	"BatchMode TRUE", "IdentitiesOnly False", "ProxyJump NONE", "ProxyCommand NONE", "ProxyJump user@[::1]:22",
	"ProxyJump ssh://u@h:2", "ProxyJump ssh://u@h:2/", "ProxyJump ssh://u:p@h", "ProxyJump [::1]", "ProxyJump -bad",
	"ProxyJump ssh://a%41@h", "ProxyJump ssh://a%4@h", "ProxyJump ssh://a%00@h", "ProxyJump ssh://a+b@h", "ProxyJump ssh://a@b@h",
	"ProxyJump ssh://[::1]", "ProxyJump ssh://[::1]:22", "ProxyJump ssh://h:0", "ProxyJump ssh://h:", "ProxyJump ssh://h/p",
	"ProxyJump ssh://h:2/p", "ProxyJump ssh://h_x", "ProxyJump ssh://-h", "ProxyJump ssh://h..x", "ProxyJump ssh://h.",
	"ProxyJump ssh://1.2.3.4", "ProxyJump ssh://u;x=y@h", "ProxyJump ssh://;x@h", "ProxyJump SSH://h", "ProxyJump ssh://h,ssh://j%41@k",
	"ProxyJump ssh://j%41@k,h", "ProxyJump ssh://h%41", "ProxyJump ssh://", "ProxyJump ssh://u@",
	"ProxyJump h,none", "ProxyJump h,NONE", "ProxyJump none:22", "ProxyJump u@none", "ProxyJump NONE,h", "ProxyJump h,none:2",
	"CanonicalDomains Example.COM. b.c", "CanonicalDomains .x", "CanonicalDomains x..y", "CanonicalDomains x_y-9",
	"CanonicalDomains -x", "CanonicalDomains x/y", "CanonicalDomains NONE", "CanonicalDomains none x", "CanonicalDomains x.",
	"ControlPath NONE", "IdentityAgent NONE", "IdentityAgent $HOME", "IdentityAgent ${SSHCONFIG_EDGE}/a", "IdentityAgent $1x",
	"IgnoreUnknown *", "IgnoreUnknown foo", "Foo bar", "Ciphers +aes128-ctr", "SendEnv",
	"CanonicalizeHostname always", "CanonicalizeMaxDots 0", "CanonicalDomains none", "ServerAliveInterval 1w",
	"ServerAliveInterval 1S", "ServerAliveInterval 1m1m", "ConnectTimeout 2147483648",
	"ServerAliveCountMax 2147483648", "NumberOfPasswordPrompts -1", "NumberOfPasswordPrompts 2147483648", "PreferredAuthentications", "Port 65535", "Port 65536", "HostKeyAlias", "HostKeyAlias A B",
}

// deliberateLines are where sshdial follows later OpenSSH versions than the
// 9.2 the tests run (see the package documentation), or accepts what ssh
// refuses in a keyword it does not use: ssh -G and Resolve must disagree
// as documented.
var deliberateLines = []struct {
	line    string
	refuses bool   // Resolve refuses the line (ssh 9.2 takes it)
	key     string // else: the key whose value differs
}{
	{"ConnectTimeout +5", true, ""},        // later convtime takes digits only
	{"ServerAliveInterval 1s1s", true, ""}, // later convtime takes one s
	{"User %u", false, "user"},             // later User takes tokens
	{"SendEnv A=B", false, ""},             // a keyword sshdial does not use: not checked (ssh refuses it)
	{"UseKeychain yes", false, ""},         // Apple's ssh knows it; Debian's refuses it
	{"CanonicalDomains _x", false, ""},     // valid_domain of 10.0 takes a leading '_'
	{"ProxyJump ssh://_h", false, ""},      // the same
}

// TestDifferentialLines compares Resolve with ssh -G for each edge line.
func TestDifferentialLines(t *testing.T) {
	g := newSSHG(t)
	dir := t.TempDir()
	t.Setenv("SSHCONFIG_EDGE", "x")
	for i, line := range edgeLines {
		cfg := filepath.Join(dir, fmt.Sprintf("edge%d", i))
		if err := os.WriteFile(cfg, []byte(line+"\n  Port 1111\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"h", "bob@h2"} {
			want, stderr, ok := g.run(t, "-F", cfg, d)
			got, err := g.ours(cfg, nil, parseDest(d))
			switch {
			case !ok && err == nil:
				t.Errorf("%q %s: ssh -G refuses (%s), we do not", line, d, strings.TrimSpace(stderr))
			case ok && err != nil:
				t.Errorf("%q %s: we refuse (%v), ssh -G does not", line, d, err)
			case ok:
				for _, diff := range compare(got, want) {
					t.Errorf("%q %s: %s", line, d, diff)
				}
			}
		}
	}
}

// TestDifferentialDeliberate checks that each documented deviation still is
// one: if ssh -G comes to agree, the list and the documentation are stale.
func TestDifferentialDeliberate(t *testing.T) {
	g := newSSHG(t)
	dir := t.TempDir()
	for i, c := range deliberateLines {
		cfg := filepath.Join(dir, fmt.Sprintf("d%d", i))
		if err := os.WriteFile(cfg, []byte(c.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		want, _, ok := g.run(t, "-F", cfg, "h")
		got, err := g.ours(cfg, nil, parseDest("h"))
		switch {
		case !ok && c.key == "" && !c.refuses:
			if err != nil {
				t.Errorf("%q: %v; documented as taken", c.line, err)
			}
		case !ok:
			t.Errorf("%q: ssh -G refuses it", c.line)
		case c.refuses:
			if err == nil {
				t.Errorf("%q: Resolve takes it; documented as refused", c.line)
			}
		case err != nil:
			t.Errorf("%q: %v", c.line, err)
		case c.key == "":
			if d := compare(got, want); len(d) > 0 {
				t.Errorf("%q: %q", c.line, d)
			}
		default:
			if reflect.DeepEqual(got.Get(c.key), want[c.key]) {
				t.Errorf("%q: %s agrees with ssh -G; documented as differing", c.line, c.key)
			}
		}
	}
}
