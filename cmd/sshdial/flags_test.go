package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args  []string
		check func(o *options) bool
	}{
		// What bench/ runs.
		{[]string{"-N", "-L", "9000:127.0.0.1:80", "-D", "1080", "-i", "KEY", "-o", "UserKnownHostsFile=KH", "-o", "StrictHostKeyChecking=yes", "-p", "2222", "me@127.0.0.1"},
			func(o *options) bool {
				return o.destination == "me@127.0.0.1" && o.port == 2222 && len(o.local) == 1 && o.local[0].listen.port == 9000 &&
					o.local[0].target == endpoint{host: "127.0.0.1", port: 80} && o.dynamic[0].listen.port == 1080 &&
					reflect.DeepEqual(o.configLines, []string{`IdentityFile "KEY"`, "UserKnownHostsFile=KH", "StrictHostKeyChecking=yes"})
			}},
		// Clustered flags, value attached, destination first.
		{[]string{"bastion", "-NvvL8080:db:5432", "-gq"}, func(o *options) bool {
			return o.destination == "bastion" && o.verbose == 2 && o.gatewayFlag && o.quiet &&
				o.local[0].listen == endpoint{port: 8080} && o.local[0].target == endpoint{host: "db", port: 5432}
		}},
		{[]string{"-L", "0.0.0.0:8080:db:5432", "-L", "*:1:h:2", "-L", ":3:h:4", "h"}, func(o *options) bool {
			return o.local[0].listen.host == "0.0.0.0" && o.local[1].listen.host == "*" && o.local[2].listen.host == "*"
		}},
		{[]string{"-L", "[::1]:8080:[fe80::1]:80", "h"}, func(o *options) bool {
			return o.local[0].listen == endpoint{host: "::1", port: 8080} && o.local[0].target == endpoint{host: "fe80::1", port: 80}
		}},
		{[]string{"-L", "5432:/run/postgresql/.s.PGSQL.5432", "-L", "lo:1:/x.sock", "-L", "/tmp/l.sock:db:5432", "-L", "/a:/b", "h"}, func(o *options) bool {
			return o.local[0].target.path == "/run/postgresql/.s.PGSQL.5432" && o.local[0].listen.port == 5432 &&
				o.local[1].listen == endpoint{host: "lo", port: 1} && o.local[1].target.path == "/x.sock" &&
				o.local[2].listen.path == "/tmp/l.sock" && o.local[2].target == endpoint{host: "db", port: 5432} &&
				o.local[3].listen.path == "/a" && o.local[3].target.path == "/b"
		}},
		{[]string{"-R", "8080:localhost:80", "-R0:/s", "h"}, func(o *options) bool {
			return o.remote[0].listen.port == 8080 && o.remote[1].listen.port == 0 && o.remote[1].target.path == "/s"
		}},
		{[]string{"-D", "127.0.0.1:1080", "--http-proxy=3128", "--status", "30s", "--grace=1s", "h"}, func(o *options) bool {
			return o.dynamic[0].listen == endpoint{host: "127.0.0.1", port: 1080} && o.httpPx[0].listen.port == 3128 &&
				o.statusEvery == 30*time.Second && o.grace == time.Second
		}},
		// -o forms: config lines, in order (TestConfigLines checks what they do).
		{[]string{"-o", "ServerAliveInterval 5", "-oServerAliveCountMax=2", "-o", "connecttimeout = 7", "-o", "ExitOnForwardFailure=no", "-D1", "h"}, func(o *options) bool {
			return reflect.DeepEqual(o.configLines, []string{"ServerAliveInterval 5", "ServerAliveCountMax=2", "connecttimeout = 7", "ExitOnForwardFailure=no"})
		}},
		// -l and -p leave the destination as typed (TestLoginFlagsAgainstSSH
		// checks which wins); the first of each counts.
		{[]string{"-l", "u", "-p", "2", "-D1", "host"}, func(o *options) bool { return o.destination == "host" && o.user == "u" && o.port == 2 }},
		{[]string{"-l", "u", "-l", "w", "-p", "2", "-p", "3", "-D1", "v@host:3"}, func(o *options) bool {
			return o.destination == "v@host:3" && o.user == "u" && o.port == 2
		}},
		{[]string{"-o", "User=x", "-l", "u", "-o", "port 4", "-p", "2", "-D1", "h"}, func(o *options) bool { return o.user == "" && o.port == 0 }},
		{[]string{"-D1", "v@ssh", "-l", "u"}, func(o *options) bool { return o.user == "v" }},
		{[]string{"-J", "a,b@c:2", "-D1", "h"}, func(o *options) bool { return reflect.DeepEqual(o.configLines, []string{"ProxyJump a,b@c:2"}) }},
		{[]string{"-G", "h"}, func(o *options) bool { return o.dump && o.destination == "h" }},
		// Ports as ssh reads them (a2port): service names, a sign, white space.
		{[]string{"-p", "ssh", "-L", "http:db:https", "-D", "+1080", "h"}, func(o *options) bool {
			return o.port == 22 && o.local[0].listen.port == 80 && o.local[0].target == endpoint{host: "db", port: 443} &&
				o.dynamic[0].listen.port == 1080
		}},
		{[]string{"-W", "db: 5432", "h"}, func(o *options) bool { return *o.stdio == endpoint{host: "db", port: 5432} }},
		{[]string{"-D1", "--", "h"}, func(o *options) bool { return o.destination == "h" }},
		{[]string{"-fN", "-D1", "h"}, func(o *options) bool { return o.background }},
		{[]string{"-4", "-D1", "h"}, func(o *options) bool { return o.family == "inet" }},
		{[]string{"-N6", "-D1", "h"}, func(o *options) bool { return o.family == "inet6" }},
		{[]string{"-R", "1080", "-R", "*:1081", "h"}, func(o *options) bool {
			return o.remote[0].dynamic && o.remote[0].listen == endpoint{port: 1080} &&
				o.remote[1].dynamic && o.remote[1].listen == endpoint{host: "*", port: 1081}
		}},
		{[]string{"-o", "ProxyCommand=sh -c 'nc %h %p'", "-D1", "h"}, func(o *options) bool {
			return reflect.DeepEqual(o.configLines, []string{"ProxyCommand=sh -c 'nc %h %p'"})
		}},
		{[]string{"-J", "j", "-o", "ProxyCommand none", "-D1", "h"}, func(o *options) bool {
			return reflect.DeepEqual(o.configLines, []string{"ProxyJump j", "ProxyCommand none"})
		}},
	}
	for _, tt := range tests {
		o, err := parseArgs(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !tt.check(o) {
			t.Errorf("%q: parsed wrong: %+v", tt.args, o)
		}
	}
}

// Bad command lines exit 2 with a message and the usage, never a panic.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-D1"}, "missing destination"},
		{[]string{}, "missing destination"},
		{[]string{"h"}, "nothing to forward"},
		{[]string{"-x", "h"}, "unknown option -x"},
		{[]string{"--nope", "h"}, "unknown option --nope"},
		{[]string{"-L"}, "-L needs a value"},
		{[]string{"-L", "8080", "h"}, "too few fields"},
		{[]string{"-L", "8080:db", "h"}, "too few fields"},
		{[]string{"-L", "a:b:c:d:e", "h"}, "too many fields"},
		{[]string{"-L", "70000:db:80", "h"}, "out of range"},
		{[]string{"-L", "8080:db:0", "h"}, "out of range"},
		{[]string{"-L", "8080:db:nosuchservice", "h"}, "not a port number or a known service"},
		{[]string{"-L", "8080:db:0x50", "h"}, "not a port number"},
		{[]string{"-L", "8080:db:8 0", "h"}, "not a port number"},
		{[]string{"-L", "8080:db:-1", "h"}, "not a port number"},
		{[]string{"-L", "8080::80", "h"}, "empty target host"},
		{[]string{"-L", "[::1:8080:db:80", "h"}, "unclosed"},
		{[]string{"-R", "/remote.sock", "h"}, "remote dynamic forwarding takes [bind_address:]port"},
		{[]string{"-R", "a:b:c:d:e:f", "h"}, "or [bind_address:]port for a SOCKS proxy"},
		{[]string{"-D", "99999", "h"}, "out of range"},
		{[]string{"-D", "a:b:c", "h"}, "want [bind_address:]port"},
		{[]string{"-p", "0", "-D1", "h"}, "out of range"},
		{[]string{"-p", "x", "-D1", "h"}, "not a port number"},
		{[]string{"-o", "Bogus=1", "-D1", "h"}, "bad configuration option"},
		{[]string{"-o", "ProxyCommand=", "-D1", "h"}, "missing argument"},
		{[]string{"-o", "Host=x", "-D1", "h"}, "not allowed on the command line"},
		{[]string{"-o", "Match=all", "-D1", "h"}, "not allowed on the command line"},
		{[]string{"-o", "Port=0", "-D1", "h"}, "out of range"},
		{[]string{"-J", "j", "-o", "ProxyCommand=nc %h %p", "-D1", "h"}, "give one"},
		{[]string{"-o", "=yes", "-D1", "h"}, "missing argument"},
		{[]string{"-o", "StrictHostKeyChecking=maybe", "-D1", "h"}, "unsupported value \"maybe\""},
		{[]string{"-o", "ServerAliveInterval=-3", "-D1", "h"}, "invalid time value"},
		{[]string{"-o", "ConnectTimeout=x", "-D1", "h"}, "invalid time value"},
		{[]string{"-o", "ExitOnForwardFailure=perhaps", "-D1", "h"}, "unsupported value \"perhaps\""},
		{[]string{"-D1", "h", "uptime"}, "runs no remote command"},
		{[]string{"--status", "1ms", "-D1", "h"}, "--status"},
		{[]string{"--status"}, "needs a value"},
		{[]string{"--grace=-1s", "-D1", "h"}, "--grace"},
		{[]string{"--help=yes"}, "takes no value"},
		{[]string{"-J", "a,,b", "-D1", "h"}, "empty jump host"},
		{[]string{"-l", "", "-D1", "h"}, "empty user name"},
		{[]string{"demo", "extra"}, "demo takes no arguments"},
	}
	for _, tt := range tests {
		code, out, stderr := runSync(t, 5*time.Second, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "usage: sshdial") || out != "" {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q with the usage", tt.args, code, stderr, tt.want)
		}
		if strings.Contains(stderr, "panic") || strings.Contains(stderr, "internal error") {
			t.Errorf("%q: %s", tt.args, stderr)
		}
	}
}

// FuzzParseArgs: any command line parses or is refused; it never panics.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"-L 8080:db:80 h", "-NvL[::1]:1:[::2]:3 h", "-o a=b", "-R /a:/b h", "-D [:1 h", "-L :::: h", "-p 1 -l u ssh://h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		o, err := parseArgs(strings.Fields(line))
		if err == nil && o == nil {
			t.Fatal("no options and no error")
		}
	})
}
