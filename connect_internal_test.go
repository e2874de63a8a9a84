package sshdial

import (
	"errors"
	"strings"
	"testing"
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
