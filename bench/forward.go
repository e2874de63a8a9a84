package main

import (
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/testproc"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// forward is an `ssh -N -L` process forwarding a local port to each target.
// It is started with internal/testproc, so on Linux it dies with the
// harness even when the harness is killed.
type forward struct {
	cipher string
	proc   *testproc.Process
	local  map[string]string // target address -> local address
}

func startForward(e *env, cipher string) (*forward, error) {
	f := &forward{cipher: cipher, local: map[string]string{}}
	_, sshdPort, _ := net.SplitHostPort(e.sshd.Addr)
	args := []string{"-N", "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + e.knownHosts, "-o", "ExitOnForwardFailure=yes",
		"-o", "Compression=no", "-c", cipher, "-i", e.keyFile, "-p", sshdPort}
	for _, target := range []string{e.source, e.sink, e.echo} {
		port, err := testproc.FreePort()
		if err != nil {
			return nil, err
		}
		local := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		f.local[target] = local
		args = append(args, "-L", local+":"+target)
	}
	args = append(args, e.sshd.User+"@127.0.0.1")
	p, err := testproc.Launch(testproc.Options{}, "ssh", args...)
	if err != nil {
		return nil, fmt.Errorf("ssh -L: %v", err)
	}
	f.proc = p
	for _, local := range f.local {
		if err := p.WaitListening(local, 10*time.Second); err != nil {
			p.Stop()
			return nil, fmt.Errorf("ssh -L: %v", err)
		}
	}
	return f, nil
}

func (f *forward) dial(target string) (net.Conn, error) {
	local, ok := f.local[target]
	if !ok {
		return nil, fmt.Errorf("no forward for %s", target)
	}
	return net.Dial("tcp", local)
}

// cpu returns the ssh process's CPU time so far, from /proc.
func (f *forward) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.proc.Pid()))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// close stops ssh and passes on what it printed, if anything.
func (f *forward) close() {
	f.proc.Stop()
	if out := f.proc.Output(); out != "" {
		fmt.Fprintf(os.Stderr, "ssh -L (%s): %s", f.cipher, out)
	}
}

func writeKey(path string, s *opensshd.Server) error {
	block, err := ssh.MarshalPrivateKey(s.ClientPrivateKey, "")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

func writeKnownHosts(path string, s *opensshd.Server) error {
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	return os.WriteFile(path, []byte(line+"\n"), 0o600)
}
