package sshconfig

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// servicesFile is the file getservbyname reads on Unix.
var servicesFile = "/etc/services"

// lookupService returns the port of the TCP service named name, as ssh's
// getservbyname(name, "tcp") finds it: on Unix a name or alias in
// servicesFile, matched exactly (net.LookupPort would also match another
// case, and names from Go's own table that the file lacks); elsewhere
// net.LookupPort.
func lookupService(name string) (int, bool) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		p, err := net.LookupPort("tcp", name)
		return p, err == nil && p > 0 && p <= 65535
	}
	f, err := os.Open(servicesFile)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		num, proto, ok := strings.Cut(fields[1], "/")
		if !ok || proto != "tcp" {
			continue
		}
		for i, n := range fields {
			if i == 1 || n != name {
				continue
			}
			if p, err := strconv.Atoi(num); err == nil && p > 0 && p <= 65535 {
				return p, true
			}
		}
	}
	return 0, false
}
