package sshdial

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/sshconfig"
)

// TestHopChain: ProxyJump a,b reaches b through a and a through a's own
// ProxyJump, as ssh does (b's own ProxyJump is not used); explicit jumps
// replace the destination's; loops end in an error.
func TestHopChain(t *testing.T) {
	config := map[string][]string{
		"dest":  {"a", "b"},
		"a":     {"x"},
		"b":     {"never"},
		"x":     nil,
		"loop1": {"loop2"},
		"loop2": {"loop1"},
	}
	resolve := func(name string) (*hop, error) {
		jumps, ok := config[name]
		if !ok {
			return nil, errors.New("unknown host " + name)
		}
		return &hop{Alias: name, ProxyJump: jumps}, nil
	}
	names := func(hops []*hop) string {
		var s []string
		for _, h := range hops {
			s = append(s, h.Alias)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		dest  string
		jumps []string
		own   bool
		want  string
	}{
		{"dest", nil, true, "x,a,b,dest"},
		{"x", nil, true, "x"},
		{"dest", []string{"x"}, false, "x,dest"},
		{"dest", nil, false, "dest"},
	} {
		hops, err := hopChain(resolve, c.dest, c.jumps, c.own, 0)
		if err != nil {
			t.Fatalf("%s %v: %v", c.dest, c.jumps, err)
		}
		if got := names(hops); got != c.want {
			t.Errorf("%s %v own=%v: hops %s, want %s", c.dest, c.jumps, c.own, got, c.want)
		}
	}
	if _, err := hopChain(resolve, "loop1", nil, true, 0); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("a ProxyJump loop: %v", err)
	}
	if _, err := hopChain(resolve, "dest", []string{"nowhere"}, false, 0); err == nil || !strings.Contains(err.Error(), `jump host "nowhere"`) {
		t.Errorf("an unknown jump host: %v", err)
	}
}

// Every connection, the first included, has a ConnectTimeout: the config
// file's, WithConnectTimeout's, else 30 seconds, so that Connect with
// context.Background() never waits forever.
func TestConnectTimeoutDefault(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("Host slow\n  ConnectTimeout 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dest string
		opts []ConnectOption
		want time.Duration
	}{
		{"u@fast", nil, 30 * time.Second},
		{"u@slow", nil, 7 * time.Second},
		{"u@slow", []ConnectOption{WithConnectTimeout(2 * time.Second)}, 2 * time.Second},
	} {
		d, err := newConnectDialer(context.Background(), tc.dest, append([]ConnectOption{WithConfigFile(config)}, tc.opts...))
		if err != nil {
			t.Fatal(err)
		}
		if got := d.connect.timeout; got != tc.want {
			t.Errorf("%s with %d options: ConnectTimeout %v, want %v", tc.dest, len(tc.opts), got, tc.want)
		}
		d.close(false)
	}
}

// A jump host's user part may hold a password (ssh://user:secret@host,
// which ssh takes as a user name): errors about the jump show it as "…".
func TestHopChainJumpErrorHidesPassword(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config")
	for _, jumps := range []string{"ssh://u:s3cret@jh", "ok,ssh://u:s3cret@jh", "ssh://u:s3cret@jh:2222"} {
		config := "Host dest\n  ProxyJump " + jumps + "\nHost jh\n  IdentityFile ~nosuchuser9/id\n"
		if err := os.WriteFile(f, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		resolve := func(d string) (*hop, error) { return resolveHop(d, f, dir, "me") }
		_, err := hopChain(resolve, "dest", nil, true, 0)
		if err == nil {
			t.Fatalf("ProxyJump %s: no error for a jump host with a bad Port", jumps)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "jh") {
			t.Errorf("ProxyJump %s: %v", jumps, err)
		}
	}
}

// hopFromConfig checks each ProxyJump hop again; its error hides a user
// part holding a password too.
func TestHopFromConfigJumpErrorHidesPassword(t *testing.T) {
	for _, jumps := range []string{"u:s3cret@bad host", "ok,u:s3cret@bad host"} {
		_, err := hopFromConfig(&sshconfig.Config{Host: "h", HostName: "h", Port: 22, User: "me", ProxyJump: jumps}, false)
		if err == nil {
			t.Fatalf("ProxyJump %s: no error", jumps)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "bad host") {
			t.Errorf("ProxyJump %s: %v", jumps, err)
		}
	}
	_, err := hopFromConfig(&sshconfig.Config{Host: "h", HostName: "h", Port: 22, User: "me", ProxyJump: "u@bad host"}, false)
	if err == nil || !strings.Contains(err.Error(), "u@bad host") {
		t.Errorf("a hop without a password: %v", err)
	}
}
