package main

// Attempts to break, from outside, three changes of one day:
//
//  1. a handed-over connection whose ControlMaster died is reset only once
//     the client has taken the socket's send queue (drainSendQueue);
//  2. the status line's "ssh through the ControlMaster at PATH";
//  3. ports read as OpenSSH's a2port (service names, a sign, leading white
//     space), with `ssh -G` as the oracle.
//
// Tests named ...Regression showed a defect when written, fixed the same
// day; each comment says what it was.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/sshconfig"
	"github.com/sshdial/sshdial/internal/testutil"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------
// 3. Ports as a2port, against ssh -G.
// ---------------------------------------------------------------------

// tbG is one -G run: whether it succeeded, its key values, its stderr.
type tbG struct {
	ok     bool
	keys   map[string][]string
	stderr string
}

func (g tbG) String() string {
	if !g.ok {
		return "refused: " + strings.TrimSpace(firstLine(g.stderr))
	}
	var parts []string
	for _, k := range []string{"user", "hostname", "port", "proxyjump", "localforward", "remoteforward", "dynamicforward"} {
		for _, v := range g.keys[k] {
			parts = append(parts, k+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// tbBoth runs `sshdial -G args` (in-process) and `ssh -G args`.
func tbBoth(t *testing.T, ssh string, args ...string) (ours, theirs tbG) {
	t.Helper()
	code, out, stderr := runSync(t, 20*time.Second, append([]string{"-G"}, args...)...)
	ours = tbG{ok: code == 0, keys: gLines(out), stderr: stderr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ssh, append([]string{"-G"}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	theirs = tbG{ok: err == nil, keys: gLines(so.String()), stderr: se.String()}
	return ours, theirs
}

// tbCompare reports where ours and theirs differ: acceptance, and the
// values of keys.
func tbCompare(ours, theirs tbG, keys ...string) string {
	if ours.ok != theirs.ok {
		return fmt.Sprintf("sshdial -G: %s; ssh -G: %s", ours, theirs)
	}
	if !ours.ok {
		return ""
	}
	for _, k := range keys {
		if strings.Join(ours.keys[k], "|") != strings.Join(theirs.keys[k], "|") {
			return fmt.Sprintf("%s: sshdial -G %q, ssh -G %q", k, ours.keys[k], theirs.keys[k])
		}
	}
	return ""
}

// tbPortConfig writes a config whose Host x has the line "Port " + v
// (v as written, quotes and all) and returns its path.
func tbPortConfig(t *testing.T, dir string, i int, line string) string {
	t.Helper()
	cfg := filepath.Join(dir, fmt.Sprintf("c%d", i))
	if err := os.WriteFile(cfg, []byte("Host x\n    "+line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tbEmptyConfig is an empty config file.
func tbEmptyConfig(t *testing.T) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The Port keyword, -p, ssh:// URLs and ProxyJump, with odd values, agree
// with ssh -G: the same port, hostname, user and proxyjump, and a refusal
// where ssh refuses.
func TestTodayBreakPortsAgainstSSH(t *testing.T) {
	ssh := needSSH(t)
	dir := t.TempDir()
	empty := tbEmptyConfig(t)

	t.Run("Port", func(t *testing.T) {
		for i, v := range []string{
			"http", "www", "ssh", "tcpmux", "domain", "https", "telnet", "ftps", "gopher", "submissions", "ssmtp", "sunrpc",
			"0", "65535", "65536", "-0", "+0", "-1", "+22", "022", "+022", `" 22"`, `"22 "`, `" +22"`, `"+ 22"`, `"\t22"`,
			`"http "`, `" http"`, `"+http"`, "http/tcp", "ssh/tcp", "0x16", "1e2", "99999999999999999999", "-99999999999999999999",
			`""`, `" "`, "route", "biff", "who", "nosuchservice", "Port=http", "ht\x00tp", "ssh\x00junk", "22\x00", "2\x002",
			"http\t", `"http"`, "'http'", "http,ssh", "http#comment",
		} {
			line := "Port " + v
			if strings.HasPrefix(v, "Port=") {
				line = v
			}
			cfg := tbPortConfig(t, dir, i, line)
			ours, theirs := tbBoth(t, ssh, "-F", cfg, "x")
			if d := tbCompare(ours, theirs, "port", "hostname", "user"); d != "" {
				t.Errorf("%q: %s", line, d)
			}
		}
	})

	t.Run("-p", func(t *testing.T) {
		for _, v := range []string{
			"ssh", "http", "www", "tcpmux", " 22", "22 ", "+22", " +22", "\t22", "0", "-0", "+0", "65536", "", " ",
			"99999999999999999999", "0x16", "http/tcp", "nosuchservice", "-22",
		} {
			ours, theirs := tbBoth(t, ssh, "-F", empty, "-p", v, "x")
			if d := tbCompare(ours, theirs, "port", "hostname", "user"); d != "" {
				t.Errorf("-p %q: %s", v, d)
			}
		}
	})

	t.Run("ssh-url", func(t *testing.T) {
		for _, v := range []string{
			"ssh://h:https", "ssh://h:ssh", "ssh://h:www", "ssh://h:tcpmux", "ssh://u@h:http", "ssh://u@h:http/",
			"ssh://h:+22", "ssh://h: 22", "ssh://h:0", "ssh://h:-0", "ssh://h:+0", "ssh://h:65536",
			"ssh://h:99999999999999999999", "ssh://h:nosuchservice", "ssh://h:http%20", "ssh://h:ht%74p",
			"ssh://secret@h:http", "ssh://u;x=y@h:https", "ssh://u@h:http?x", "ssh://u@h:http#x", "ssh://h:http/x",
		} {
			ours, theirs := tbBoth(t, ssh, "-F", empty, v)
			if d := tbCompare(ours, theirs, "port", "hostname", "user"); d != "" {
				t.Errorf("%q: %s", v, d)
			}
		}
	})

	t.Run("ProxyJump", func(t *testing.T) {
		for i, v := range []string{
			"b:https", "u@b:http", "ssh://u@b:https", "ssh://u@b:ssh/", "b:0", "b:+22", "b: 22", "b:http/tcp", "b:65536",
			"b:-0", "b:tcpmux", "[::1]:https", "x,b:https", "b:99999999999999999999", "b:nosuchservice", "a:ssh,b:www",
		} {
			cfg := tbPortConfig(t, dir, 1000+i, "ProxyJump "+v)
			ours, theirs := tbBoth(t, ssh, "-F", cfg, "x")
			if d := tbCompare(ours, theirs, "proxyjump", "port", "hostname"); d != "" {
				t.Errorf("ProxyJump %q: %s", v, d)
			}
			ours, theirs = tbBoth(t, ssh, "-F", empty, "-J", v, "x")
			if d := tbCompare(ours, theirs, "proxyjump", "port", "hostname"); d != "" {
				t.Errorf("-J %q: %s", v, d)
			}
		}
	})
}

// tbForwardPorts returns the ports of one ssh -G forward line:
// "8080 [db]:80", "[::1]:443 [db]:80", "443", "[localhost]:443".
func tbForwardPorts(line string) (listen, target int, ok bool) {
	port := func(s string) (int, bool) {
		if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
			s = s[i+1:]
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return 0, 0, false
	}
	listen, ok = port(fields[0])
	if len(fields) > 1 {
		target, ok = port(fields[1])
	}
	return listen, target, ok
}

// -L, -R, -D and -W with service names and odd ports: accepted where ssh
// accepts them, with the ports ssh -G prints. Listening port 0, which
// sshdial takes for -L and -D (any free port) and ssh does not, is left
// out: a documented extension.
func TestTodayBreakForwardPortsAgainstSSH(t *testing.T) {
	ssh := needSSH(t)
	empty := tbEmptyConfig(t)
	for _, tc := range [][2]string{
		{"-L", "http:db:ssh"}, {"-L", "8080:db: 22"}, {"-L", "8080:db:22 "}, {"-L", " 8080:db:22"}, {"-L", "+8080:db:+22"},
		{"-L", "8080:db:0"}, {"-L", "8080:db:-0"}, {"-L", "8080:db:+0"}, {"-L", "8080:db:http/tcp"}, {"-L", "99999999999999999999:db:80"},
		{"-L", "[::1]:https:db:http"}, {"-L", "8080:db:tcpmux"}, {"-L", "8080:db:nosuchservice"}, {"-L", "8080:db:65536"},
		{"-L", "localhost:www:db:domain"}, {"-L", "8080:db:0x50"}, {"-L", "8080:[::1]:https"},
		{"-R", "ssh:db:80"}, {"-R", "0:db:80"}, {"-R", "0:db:ssh"}, {"-R", "-0:db:80"}, {"-R", "localhost:ssh:db:http"},
		{"-R", "8080:db:0"}, {"-R", "65536:db:80"},
		{"-D", "http"}, {"-D", "localhost:https"}, {"-D", "+1080"}, {"-D", " 1080"}, {"-D", "1080 "}, {"-D", "65536"},
		{"-W", "db:http"}, {"-W", "db:0"}, {"-W", "db: 22"}, {"-W", "db:22 "}, {"-W", "db:+22"}, {"-W", "db:nosuchservice"},
		{"-W", "[::1]:https"},
	} {
		ours, theirs := tbBoth(t, ssh, "-F", empty, tc[0], tc[1], "x")
		name := tc[0] + " " + strconv.Quote(tc[1])
		if ours.ok != theirs.ok {
			t.Errorf("%s: sshdial -G: %s; ssh -G: %s", name, ours, theirs)
			continue
		}
		if !ours.ok {
			continue
		}
		if tc[0] == "-W" {
			want := map[string]int{"db:http": 80, "db: 22": 22, "db:+22": 22, "[::1]:https": 443}[tc[1]]
			o, err := parseArgs([]string{tc[0], tc[1], "x"})
			if err != nil {
				t.Fatalf("%s: parseArgs: %v after -G accepted it", name, err)
			}
			if o.stdio == nil || o.stdio.port != want {
				t.Errorf("%s: sshdial reads %+v, want port %d", name, o.stdio, want)
			}
			continue
		}
		// The ports ssh -G prints for the forward, and sshdial's parse.
		key := map[string]string{"-L": "localforward", "-R": "remoteforward", "-D": "dynamicforward"}[tc[0]]
		lines := theirs.keys[key]
		if len(lines) != 1 {
			t.Errorf("%s: ssh -G printed %q for %s", name, lines, key)
			continue
		}
		wl, wt, ok := tbForwardPorts(lines[0])
		if !ok {
			t.Errorf("%s: cannot read ssh -G's %q", name, lines[0])
			continue
		}
		o, err := parseArgs([]string{tc[0], tc[1], "x"})
		if err != nil {
			t.Fatalf("%s: parseArgs: %v after -G accepted it", name, err)
		}
		var f forwardSpec
		switch tc[0] {
		case "-L":
			f = o.local[0]
		case "-R":
			f = o.remote[0]
		case "-D":
			f = o.dynamic[0]
		}
		if f.listen.port != wl || (tc[0] != "-D" && f.target.port != wt) {
			t.Errorf("%s: sshdial reads listen %d, target %d; ssh -G prints %q", name, f.listen.port, f.target.port, lines[0])
		}
	}
}

// tbServices reads /etc/services: TCP names (with aliases) and their
// ports, and names that are there for UDP only.
func tbServices(t *testing.T) (tcp map[string]int, udpOnly []string) {
	t.Helper()
	f, err := os.Open("/etc/services")
	if err != nil {
		t.Skip("no /etc/services:", err)
	}
	defer f.Close()
	tcp = map[string]int{}
	udp := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(fields[1], "/")
		port, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		names := append([]string{fields[0]}, fields[2:]...)
		for _, n := range names {
			switch proto {
			case "tcp":
				if _, seen := tcp[n]; !seen {
					tcp[n] = port
				}
			case "udp":
				udp[n] = true
			}
		}
	}
	for n := range udp {
		if _, ok := tcp[n]; !ok {
			udpOnly = append(udpOnly, n)
		}
	}
	sort.Strings(udpOnly)
	return tcp, udpOnly
}

// Every TCP service name and alias of /etc/services, as Port: the port
// ssh -G prints; every UDP-only name: refused, as ssh refuses it.
func TestTodayBreakEveryServiceAgainstSSH(t *testing.T) {
	ssh := needSSH(t)
	tcp, udpOnly := tbServices(t)
	if len(tcp) < 20 {
		t.Skipf("/etc/services has %d TCP names", len(tcp))
	}
	dir := t.TempDir()
	names := make([]string, 0, len(tcp))
	for n := range tcp {
		names = append(names, n)
	}
	sort.Strings(names)
	i := 0
	for _, n := range append(names, udpOnly...) {
		if strings.ContainsAny(n, "\"'#= \t") {
			continue
		}
		cfg := tbPortConfig(t, dir, i, "Port "+n)
		i++
		ours, theirs := tbBoth(t, ssh, "-F", cfg, "x")
		if d := tbCompare(ours, theirs, "port"); d != "" {
			t.Errorf("Port %s: %s", n, d)
		}
		if p, ok := tcp[n]; ok && p >= 1 && p <= 65535 && ours.ok && strings.Join(ours.keys["port"], "") != strconv.Itoa(p) {
			t.Errorf("Port %s: sshdial -G port %q, /etc/services says %d", n, ours.keys["port"], p)
		}
	}
	t.Logf("%d TCP names and %d UDP-only names compared", len(names), len(udpOnly))
}

// Regression (fixed): a service name in another case (HTTP, Http, Ssh, HTTPS) is
// refused by ssh (glibc's getservbyname compares names exactly: `Port HTTP`
// gives "Bad port 'HTTP'", -L 8080:db:HTTP "Bad local forwarding
// specification", ssh://h:HTTPS the usage, ProxyJump b:HTTPS "Invalid
// ProxyJump"), but sshdial takes it (Go's net.LookupPort lower-cases the
// name first): sshdial -G prints port 80 where ssh refuses the command line.
func TestTodayBreakServiceNameCaseRegression(t *testing.T) {
	ssh := needSSH(t)
	dir := t.TempDir()
	empty := tbEmptyConfig(t)
	var (
		runs   [][]string
		labels []string
	)
	for i, v := range []string{"HTTP", "Http", "Ssh", "SSH", "wWw"} {
		runs = append(runs, []string{"-F", tbPortConfig(t, dir, i, "Port "+v), "x"})
		labels = append(labels, "Port "+v)
	}
	runs = append(runs,
		[]string{"-F", empty, "-p", "HTTP", "x"},
		[]string{"-F", empty, "ssh://h:HTTPS"},
		[]string{"-F", empty, "ssh://[::1]:HTTPS"},
		[]string{"-F", empty, "-J", "b:HTTPS", "x"},
		[]string{"-F", empty, "-L", "8080:db:HTTP", "x"},
		[]string{"-F", empty, "-R", "HTTP:db:80", "x"},
		[]string{"-F", empty, "-D", "HTTP", "x"},
		[]string{"-F", empty, "-W", "db:HTTP", "x"},
	)
	for i, args := range runs {
		ours, theirs := tbBoth(t, ssh, args...)
		label := fmt.Sprintf("%q", args[2:])
		if i < len(labels) {
			label = labels[i]
		}
		if len(args) == 3 && strings.HasPrefix(args[2], "ssh://[") {
			// ssh 9.2 refuses every bracketed ssh:// URL; the case
			// is what matters: HTTPS is no service ssh knows.
			theirs.ok = false
		}
		if d := tbCompare(ours, theirs, "port", "proxyjump"); d != "" {
			t.Errorf("%s: %s", label, d)
		}
	}
}

// goBuiltinServices are the TCP services Go's net package knows by itself
// (net/lookup.go), whatever /etc/services says.
var goBuiltinServices = []string{"ftp", "ftps", "gopher", "http", "https", "imap2", "imap3", "imaps", "pop3", "pop3s", "smtp", "submissions", "ssh", "telnet"}

// Regression (fixed): a name that is not in this machine's /etc/services but is in Go's
// built-in table (net.LookupPort falls back to it) is taken by sshdial and
// refused by ssh. Here (Debian 12) imap3: `Port imap3` -> ssh "Bad port
// 'imap3'", sshdial -G "port 220"; the same for -p imap3, -L 8080:db:imap3,
// -D imap3, -W db:imap3, ssh://h:imap3, ProxyJump b:imap3.
func TestTodayBreakGoBuiltinServicesRegression(t *testing.T) {
	ssh := needSSH(t)
	tcp, _ := tbServices(t)
	var missing []string
	for _, n := range goBuiltinServices {
		if _, ok := tcp[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		t.Skip("/etc/services has every name of Go's built-in table")
	}
	dir := t.TempDir()
	empty := tbEmptyConfig(t)
	for i, n := range missing {
		for _, args := range [][]string{
			{"-F", tbPortConfig(t, dir, i, "Port "+n), "x", "(Port " + n + ")"},
			{"-F", empty, "-p", n, "x"},
			{"-F", empty, "ssh://h:" + n},
			{"-F", empty, "-J", "b:" + n, "x"},
			{"-F", empty, "-L", "8080:db:" + n, "x"},
			{"-F", empty, "-D", n, "x"},
			{"-F", empty, "-W", "db:" + n, "x"},
		} {
			label := fmt.Sprintf("%q", args[2:])
			if len(args) == 4 {
				label, args = args[3], args[:3]
			}
			ours, theirs := tbBoth(t, ssh, args...)
			if d := tbCompare(ours, theirs, "port", "proxyjump"); d != "" {
				t.Errorf("%s (not in /etc/services): %s", label, d)
			}
		}
	}
}

// Regression (fixed): an ssh:// URL whose host part holds a ':' before a service-name
// port is taken with a hostname that holds ':': ssh://h::http gives
// hostname "h:" port 80, ssh://h:ssh:http hostname "h:ssh" port 80; ssh
// refuses both (usage). (ssh://h:x:80, hostname "h:x", is older; the
// service names make more such URLs pass: before, ssh://h::http was "not a
// valid ssh:// URL".)
func TestTodayBreakURLHostWithColonRegression(t *testing.T) {
	ssh := needSSH(t)
	empty := tbEmptyConfig(t)
	for _, v := range []string{"ssh://h::http", "ssh://h:ssh:http", "ssh://h:x:https", "ssh://h:http:80"} {
		ours, theirs := tbBoth(t, ssh, "-F", empty, v)
		if d := tbCompare(ours, theirs, "port", "hostname"); d != "" {
			t.Errorf("%q: %s", v, d)
		}
	}
}

// tbSecret matches the secrets the URLs below hold.
var tbSecret = regexp.MustCompile(`Secret[0-9]`)

// What the user typed as a password in an ssh:// URL never shows in an
// error message (the regression part: these pass).
func TestTodayBreakURLPasswordNotInErrors(t *testing.T) {
	for _, dest := range []string{
		"ssh://me:Secret1@host:http", "ssh://me:Secret2@host:HTTP", "ssh://me:Secret3@host:0", "ssh://me:Secret4@host:nosuch",
		"ssh://me:Secret5@host:99999999999999999999", "ssh://me:Sec%zzret6@host:http", "ssh://me:Secret7@[::1]:https",
		"ssh://me:Secret8@[::1:http", "ssh://me:http%Secret9@host", "ssh://me:Secret1@host:http/x", "ssh://me:Secret2@host:https?q",
		"ssh://me:Secret3@host:https#f", "ssh://me;fp=x:Secret4@host:ssh", "SSH://me:Secret5@host:ssh", "ssh://me:Secret6@ho st:http",
		"ssh://me:Secret7@host:+http", "ssh://me:Secret8@host: http", "ssh://me:ssh@host:Secret9",
	} {
		_, _, _, err := sshconfig.ParseDestination(dest)
		if err == nil {
			t.Errorf("%q: accepted", dest)
			continue
		}
		if tbSecret.MatchString(err.Error()) {
			t.Errorf("%q: the error shows the password: %v", dest, err)
		}
		code, out, stderr := runSync(t, 20*time.Second, "-G", "-F", "/dev/null", dest)
		if code == 0 {
			t.Errorf("%q: sshdial -G exit 0:\n%s", dest, out)
		}
		if tbSecret.MatchString(stderr) {
			t.Errorf("%q: sshdial -G's message shows the password: %s", dest, stderr)
		}
	}
}

// Regression (fixed): a password that starts with a service name and holds '/', '?' or
// '#' (ssh://me:ssh/Secret1@host: ssh -G takes user "me:ssh/Secret1",
// host "host") is shown in sshdial's error: the service name is replaced
// by its number, url.Parse then reads "me" as the host, 22 as the port,
// and the rest as a path, query or fragment, which the error quotes:
// `ssh:// destination "ssh://me:22/Secret1@host" has a path`. Before the
// change only a password starting with digits did that (ssh://me:22/...).
// (Also: ProxyJump ssh://u:Secret1@b:0, which ssh takes as user
// "u:Secret1", is quoted in full in sshdial's error, as ssh quotes it: an
// older behaviour.)
func TestTodayBreakURLPasswordWithPathRegression(t *testing.T) {
	for _, dest := range []string{"ssh://me:ssh/Secret1@host", "ssh://me:http?Secret2@host", "ssh://me:https#Secret3@host", "ssh://me:22/Secret4@host"} {
		_, _, _, err := sshconfig.ParseDestination(dest)
		if err != nil && tbSecret.MatchString(err.Error()) {
			t.Errorf("%q: the error shows the password: %v", dest, err)
		}
	}
	for _, args := range [][]string{{"-J", "ssh://u:Secret1@b:0", "x"}, {"-J", "ssh://u:Secret2@b:nosuch", "x"}} {
		_, _, stderr := runSync(t, 20*time.Second, append([]string{"-G", "-F", "/dev/null"}, args...)...)
		if tbSecret.MatchString(stderr) {
			t.Errorf("%q: sshdial -G's message shows the password: %s", args, strings.TrimSpace(firstLine(stderr)))
		}
	}
}

// No port input panics, and the library's A2Port agrees with the
// command's parsing on which inputs are ports.
func TestTodayBreakPortInputsNoPanic(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alphabet := []string{"0", "1", "2", "6", "5", "9", "+", "-", " ", "\t", "\n", "\x00", "\x7f", ":", "/", "@", "[", "]", "%", "#", "?",
		"http", "HTTP", "ssh", "https", "tcp", "é", "\xff", "x", "0x", "e", ";", ",", "\"", "'", "99999999999999999999", "domain"}
	check := func(s string) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("panic on %q: %v", s, p)
			}
		}()
		n, err := sshconfig.A2Port(s)
		if err == nil && (n < 0 || n > 65535) {
			t.Errorf("A2Port(%q) = %d", s, n)
		}
		if _, err2 := parsePort(s, true); (err == nil) != (err2 == nil) {
			t.Errorf("A2Port(%q): %v; the command's parsePort: %v", s, err, err2)
		}
		sshconfig.ParseDestination("h:" + s)
		sshconfig.ParseDestination("ssh://u@h:" + s)
		sshconfig.ParseDestination("ssh://u:p@h:" + s)
		sshconfig.ParseDestination("ssh://" + s + "@h:http")
		sshconfig.ParseDestination("ssh://" + s)
		parseArgs([]string{"-G", "-p", s, "-L", s + ":db:" + s, "-R", s + ":db:http", "-D", s, "h"})
		parseArgs([]string{"-W", "db:" + s, "h"})
		parseArgs([]string{"-J", "b:" + s, "-o", "Port " + s, "-o", "ProxyJump ssh://b:" + s, "h"})
	}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for k := r.Intn(6); k >= 0; k-- {
			b.WriteString(alphabet[r.Intn(len(alphabet))])
		}
		check(b.String())
	}
	for _, s := range []string{"", "ssh://", "ssh://:", "ssh://@:", "ssh://[", "ssh://]:http", "ssh://@", ":http", "[:http", "]:http"} {
		check(s)
		sshconfig.ParseDestination(s)
	}
}

// ---------------------------------------------------------------------
// 1. The reset of a handed connection whose master died waits for the
// client to take the send queue.
// ---------------------------------------------------------------------

// tbHolder is a target that writes size bytes of hbPattern and then keeps
// the connection open (reading) until it ends: the master never ends the
// tunnel by itself.
func tbHolder(size int64) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(120 * time.Second))
		buf := make([]byte, 32<<10)
		for off := int64(0); off < size; {
			n := min(int64(len(buf)), size-off)
			for i := int64(0); i < n; i++ {
				buf[i] = hbPattern(off + i)
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			off += n
		}
		io.Copy(io.Discard, c)
	}
}

// tbTxQueue returns the send queue (tx_queue in /proc/net/tcp) of the IPv4
// TCP socket local -> remote, -1 when there is none.
func tbTxQueue(t *testing.T, local, remote *net.TCPAddr) int {
	t.Helper()
	f := hbProcNetTCP(t, local, remote)
	if f == nil {
		return -1
	}
	tx, _, _ := strings.Cut(f[4], ":")
	n, err := strconv.ParseInt(tx, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// tbInQueue is the bytes waiting to be read in c (SIOCINQ).
func tbInQueue(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := -1
	rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tbStill waits until the data from the master to client (which reads
// nothing) stops moving, and returns client's receive queue and the send
// queue of sshdial's accepted socket.
func tbStill(t *testing.T, client net.Conn) (inq, outq int) {
	t.Helper()
	accLocal, accRemote := client.RemoteAddr().(*net.TCPAddr), client.LocalAddr().(*net.TCPAddr)
	still := time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Since(still) < time.Second; {
		if time.Now().After(deadline) {
			t.Fatalf("the queues kept changing: in %d, out %d", inq, outq)
		}
		time.Sleep(50 * time.Millisecond)
		in, out := tbInQueue(t, client), tbTxQueue(t, accLocal, accRemote)
		if in != inq || out != outq || in == 0 {
			inq, outq, still = in, out, time.Now()
		}
	}
	return inq, outq
}

// tbHanded starts sshd, a master, a target that sends size bytes and holds
// the connection, and sshdial -L through the master with extra flags; it
// returns a client connection the master serves, whose queues are full
// (the client has read nothing), and their sizes.
//
// ignore and fds are for hbNoLeak: what runs and is open before sshdial.
func tbHanded(t *testing.T, size int64, extra ...string) (f *fixture, m *opensshd.Master, c *cli, conn net.Conn, inq, outq int, ignore goleak.Option, fds int) {
	t.Helper()
	f, m = hbMaster(t)
	source := testutil.Serve(t, "tcp", tbHolder(size)).Addr().String()
	ignore, fds = goleak.IgnoreCurrent(), hbFDCount(t)
	c = startCLI(t, f.args(append(append([]string{"-S", m.Sock}, extra...), "-L", "0:"+source)...)...)
	conn = hbDial(t, c.addr("-L", 0))
	accepted := hbAccepted(t, conn)
	if !hbEventually(20*time.Second, func() bool { return hbSocketInodes(t, m.Pid())[accepted] > 0 }) {
		t.Fatalf("the connection was not handed to the master")
	}
	inq, outq = tbStill(t, conn)
	if outq <= 0 {
		t.Fatalf("nothing in the accepted socket's send queue (client's queue %d): the test shows nothing", inq)
	}
	t.Logf("before the master dies: %d bytes in the client's receive queue, %d in sshdial's socket's send queue", inq, outq)
	return f, m, c, conn, inq, outq, ignore, fds
}

// tbKill kills the master and waits for its end.
func tbKill(t *testing.T, m *opensshd.Master) time.Time {
	t.Helper()
	m.Kill()
	select {
	case <-m.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("the master did not exit")
	}
	return time.Now()
}

// The master dies while the client reads nothing; the client reads later:
// it gets every byte the master had written (its receive queue and
// sshdial's socket's send queue), uncorrupted, then a reset, never a clean
// EOF; the forward counts what the client got as received.
func TestTodayBreakMasterDeathDeliversQueued(t *testing.T) {
	_, m, c, conn, inq, outq, _, _ := tbHanded(t, 32<<20)
	fw := hbForward(c, "-L", 0)
	r0 := fw.received.Load()
	tbKill(t, m)
	time.Sleep(time.Second) // the forward's end is seen; the client still reads nothing
	if fw.open.Load() != 1 {
		t.Errorf("the tunnel is not open 1s after the master died, with %d bytes not taken yet: the reset did not wait", outq)
	}
	n, err := hbDrain(conn, 0)
	switch {
	case err == io.EOF:
		t.Errorf("a clean EOF after %d bytes: a cut-short download looks complete", n)
	case !hbIsReset(err):
		t.Errorf("%v after %d bytes, want a reset", err, n)
	}
	if n != int64(inq+outq) {
		t.Errorf("the client read %d bytes, the master had written %d (%d in its queue, %d in the send queue)", n, inq+outq, inq, outq)
	}
	hbWaitOpen(t, c, fw, 0, 20*time.Second, "after the reset")
	if got := fw.received.Load() - r0; got != n {
		t.Errorf("the forward counts %d bytes received, the client read %d", got, n)
	}
}

// The master dies and the client never reads: the tunnel still ends, about
// 5 s later (the drain's stall limit), with a reset: the client then reads
// what its own queue held, and the reset.
func TestTodayBreakMasterDeathIdleClientBounded(t *testing.T) {
	_, m, c, conn, inq, _, ignore, fds := tbHanded(t, 32<<20)
	fw := hbForward(c, "-L", 0)
	killed := tbKill(t, m)
	hbWaitOpen(t, c, fw, 0, 20*time.Second, "a client that reads nothing, after the master died")
	took := time.Since(killed)
	t.Logf("the tunnel ended %v after the master died", took.Round(time.Millisecond))
	if took > 9*time.Second {
		t.Errorf("a client that reads nothing held the tunnel %v after the master died; want about 5s", took)
	}
	n, err := hbDrain(conn, 0)
	if !hbIsReset(err) {
		t.Errorf("%v after %d bytes, want a reset", err, n)
	}
	if n != int64(inq) {
		t.Errorf("the client read %d bytes, its queue held %d", n, inq)
	}
	if code := c.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	conn.Close()
	hbNoLeak(t, "after the drain and the shutdown", ignore, fds)
}

// The master dies while the client resets its own connection: the tunnel
// ends without waiting for a queue nobody will take (at most the stall
// limit).
func TestTodayBreakMasterDeathClientResets(t *testing.T) {
	_, m, c, conn, _, _, _, _ := tbHanded(t, 32<<20)
	fw := hbForward(c, "-L", 0)
	killed := tbKill(t, m)
	time.Sleep(200 * time.Millisecond)
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	hbWaitOpen(t, c, fw, 0, 20*time.Second, "after the client's reset")
	took := time.Since(killed)
	t.Logf("the tunnel ended %v after the master died and the client reset", took.Round(time.Millisecond))
	if took > 9*time.Second {
		t.Errorf("the tunnel ended %v after the client reset its connection", took)
	}
}

// tbSlowReader reads c 16 KiB every 200 ms (the drain sees progress all the
// time) until an error, which it returns on the channel.
func tbSlowReader(c net.Conn) (<-chan error, *sync.WaitGroup) {
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 16<<10)
		var off int64
		for {
			n, err := io.ReadFull(c, buf)
			for i := 0; i < n; i++ {
				if buf[i] != hbPattern(off+int64(i)) {
					errc <- fmt.Errorf("byte %d corrupted", off+int64(i))
					return
				}
			}
			off += int64(n)
			if err != nil {
				errc <- err
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return errc, &wg
}

// Shutdown while a tunnel whose master died is still draining to a client
// that reads slowly (it makes progress, so the stall limit never ends the
// drain): the grace period's end, the second signal, and --grace 0 each
// end it promptly; the client reads a reset; sshdial exits 0 and leaves no
// goroutine or descriptor. And a client that reads nothing delays a
// shutdown with a long grace period by at most the stall limit.
func TestTodayBreakDrainShutdown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		hurry bool // a second signal 1s after the first
		idle  bool // the client reads nothing
		limit time.Duration
	}{
		{name: "grace-over", grace: 2 * time.Second, limit: 2*time.Second + 8*time.Second},
		{name: "second-signal", grace: time.Minute, hurry: true, limit: 1*time.Second + 8*time.Second},
		{name: "grace-0", grace: 0, limit: 8 * time.Second},
		{name: "idle-client-long-grace", grace: time.Minute, idle: true, limit: 5*time.Second + 8*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, m := hbMaster(t)
			source := testutil.Serve(t, "tcp", tbHolder(32<<20)).Addr().String()
			ignore, fds := goleak.IgnoreCurrent(), hbFDCount(t)
			hurry := make(chan struct{})
			c := launchCLIHurry(t, false, hurry, f.args("-S", m.Sock, "--grace", tc.grace.String(), "-L", "0:"+source)...)
			conn := hbDial(t, c.addr("-L", 0))
			conn.SetDeadline(time.Now().Add(90 * time.Second))
			accepted := hbAccepted(t, conn)
			if !hbEventually(20*time.Second, func() bool { return hbSocketInodes(t, m.Pid())[accepted] > 0 }) {
				t.Fatalf("the connection was not handed to the master")
			}
			_, outq := tbStill(t, conn)
			if outq <= 0 {
				t.Fatal("nothing queued: the test shows nothing")
			}
			var (
				rerr <-chan error
				wg   = &sync.WaitGroup{}
			)
			if !tc.idle {
				rerr, wg = tbSlowReader(conn)
			}
			tbKill(t, m)
			time.Sleep(time.Second)
			fw := hbForward(c, "-L", 0)
			if fw.open.Load() != 1 {
				t.Fatalf("the tunnel ended within 1s of the master's death although the client reads on (or is idle): nothing to shut down")
			}
			c.cancel()
			stopped := time.Now()
			if tc.hurry {
				time.Sleep(time.Second)
				close(hurry)
			}
			select {
			case code := <-c.done:
				c.done <- code
				if code != 0 {
					t.Errorf("exit code %d", code)
				}
			case <-time.After(tc.limit + 20*time.Second):
				t.Fatalf("sshdial did not exit %v after the stop", tc.limit+20*time.Second)
			}
			took := time.Since(stopped)
			t.Logf("sshdial exited %v after the stop", took.Round(time.Millisecond))
			if took > tc.limit {
				t.Errorf("sshdial exited %v after the stop, want at most %v (grace %v)", took, tc.limit, tc.grace)
			}
			if !tc.idle {
				var err error
				select {
				case err = <-rerr:
				case <-time.After(20 * time.Second):
					t.Fatal("the client still reads 20s after sshdial exited")
				}
				if !hbIsReset(err) {
					t.Errorf("the client's read ended with %v, want a reset", err)
				}
			} else {
				_, err := io.Copy(io.Discard, conn)
				if !hbIsReset(err) {
					t.Errorf("the idle client's read ended with %v, want a reset", err)
				}
			}
			conn.Close()
			wg.Wait()
			hbNoLeak(t, "after the shutdown", ignore, fds)
		})
	}
}

// ---------------------------------------------------------------------
// 2. The status line.
// ---------------------------------------------------------------------

// tbStatus is the status summary's first line.
func tbStatus(c *cli) string {
	var b bytes.Buffer
	c.s.writeStatus(&b)
	return firstLine(b.String())
}

// tbStatusWants checks that the status line says link ("ssh " + link +
// ", destination").
func tbStatusWants(t *testing.T, c *cli, link, when string) {
	t.Helper()
	if s := tbStatus(c); !strings.Contains(s, ": ssh "+link+", destination") {
		t.Errorf("%s: the status says %q; want \"ssh %s\"", when, s, link)
	}
}

// The status line with -S: through the master while tunnels go through
// it; "ssh up" once a connection fell back to sshdial's own login after the
// master died; through a new master at the same path again, with the own
// connection still up; and "ssh up" with -S naming no master at all.
func TestTodayBreakStatusThroughMaster(t *testing.T) {
	f, m := hbMaster(t)
	echo := testutil.EchoServer(t, "tcp").Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+echo)...)
	through := "through the ControlMaster at " + m.Sock
	tbStatusWants(t, c, through, "with a master, before any tunnel")
	conn := hbDial(t, c.addr("-L", 0))
	if err := testutil.RoundTrip(conn, "through the master"); err != nil {
		t.Fatal(err)
	}
	tbStatusWants(t, c, through, "with a tunnel through the master")
	tbKill(t, m)
	hbWaitOpen(t, c, hbForward(c, "-L", 0), 0, 20*time.Second, "after the master died")
	conn = hbDial(t, c.addr("-L", 0))
	if err := testutil.RoundTrip(conn, "fell back"); err != nil {
		t.Fatal(err)
	}
	waitSSHDLogins(t, f.srv, 2, "the fallback's login")
	tbStatusWants(t, c, "up", "after a connection fell back to its own login")
	conn.Close()

	// A new master at the same path (the killed one left its socket
	// behind): the next connection goes through it.
	os.Remove(m.Sock)
	pid := hbNewMaster(t, f, m, 3)
	conn = hbDial(t, c.addr("-L", 0))
	if err := testutil.RoundTrip(conn, "through the new master"); err != nil {
		t.Fatal(err)
	}
	accepted := hbAccepted(t, conn)
	if !hbEventually(10*time.Second, func() bool { return hbSocketInodes(t, pid)[accepted] > 0 }) {
		t.Logf("the connection after the new master started was not handed to it (%s)", tbStatus(c))
	} else {
		tbStatusWants(t, c, through+", and an own connection up", "through a new master, with the fallback's own connection up")
	}
	conn.Close()

	t.Run("no-master", func(t *testing.T) {
		c := startCLI(t, f.args("-S", filepath.Join(testutil.ShortTempDir(t), "none"), "-L", "0:"+echo)...)
		tbStatusWants(t, c, "up", "-S naming no master")
		conn := hbDial(t, c.addr("-L", 0))
		if err := testutil.RoundTrip(conn, "own login"); err != nil {
			t.Fatal(err)
		}
		tbStatusWants(t, c, "up", "-S naming no master, after a tunnel")
	})
}

// Regression (fixed): once the master is dead (killed; its socket gone; the handed
// tunnels reset with "the ControlMaster is gone" as their cause), and
// before any new connection, the status still says "ssh through the
// ControlMaster at PATH" (Stats.ControlPath is the master "as last found";
// only the next dial forgets it). The README says the line says so "while
// a master answers there"; none answers, and no own connection is up: the
// line should say "ssh down (made again on the next connection)".
func TestTodayBreakStatusAfterMasterDeathRegression(t *testing.T) {
	f, m := hbMaster(t)
	source := testutil.Serve(t, "tcp", hbSource(-1, nil, nil)).Addr().String()
	c := startCLI(t, f.args("-S", m.Sock, "-L", "0:"+source)...)
	conn := hbDial(t, c.addr("-L", 0))
	if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	tbKill(t, m)
	if _, err := hbDrain(conn, 64<<10); !hbIsReset(err) {
		t.Errorf("the download ended with %v after the master died, want a reset", err)
	}
	hbWaitOpen(t, c, hbForward(c, "-L", 0), 0, 20*time.Second, "after the master died")
	if _, err := os.Stat(m.Sock); !errors.Is(err, os.ErrNotExist) {
		t.Logf("the control socket is still there: %v", err)
	}
	tbStatusWants(t, c, "down (made again on the next connection)", "the master dead, its tunnels reset, no own connection")
}
