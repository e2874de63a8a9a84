package sshconfig

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// lookupService matches as getservbyname(name, "tcp"): names and aliases,
// exactly, TCP entries only, comments ignored.
func TestLookupService(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("net.LookupPort there")
	}
	f := filepath.Join(t.TempDir(), "services")
	text := "# a comment naming web 1/tcp\n" +
		"web\t\t8080/tcp\twww-alt alt # the web\n" +
		"dns\t53/udp\n" +
		"big\t70000/tcp\n" +
		"odd 9/tcp#comment\n"
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	old := servicesFile
	servicesFile = f
	t.Cleanup(func() { servicesFile = old })
	for name, want := range map[string]int{"web": 8080, "www-alt": 8080, "alt": 8080, "odd": 9,
		"WEB": 0, "Web": 0, "dns": 0, "big": 0, "the": 0, "8080/tcp": 0, "comment": 0, "a": 0, "http": 0} {
		p, ok := lookupService(name)
		if ok != (want > 0) || p != want {
			t.Errorf("lookupService(%q) = %d, %v; want %d", name, p, ok, want)
		}
		if want > 0 {
			if p, err := A2Port(name); err != nil || p != want {
				t.Errorf("A2Port(%q) = %d, %v; want %d", name, p, err, want)
			}
		}
	}
}
