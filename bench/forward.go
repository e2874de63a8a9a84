package main

import (
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/portwait"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// forward is an `ssh -N -L` process forwarding a local port to each target.
type forward struct {
	cmd   *exec.Cmd
	local map[string]string // target address -> local address
}

func startForward(e *env, cipher string) (*forward, error) {
	f := &forward{local: map[string]string{}}
	_, sshdPort, _ := net.SplitHostPort(e.sshd.Addr)
	args := []string{"-N", "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + e.knownHosts, "-o", "ExitOnForwardFailure=yes",
		"-o", "Compression=no", "-c", cipher, "-i", e.keyFile, "-p", sshdPort}
	for _, target := range []string{e.source, e.sink, e.echo} {
		port, err := opensshd.FreePort()
		if err != nil {
			return nil, err
		}
		local := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		f.local[target] = local
		args = append(args, "-L", local+":"+target)
	}
	args = append(args, e.sshd.User+"@127.0.0.1")
	f.cmd = exec.Command("ssh", args...)
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("ssh -L: %v", err)
	}
	for _, local := range f.local {
		if err := portwait.Wait(local, 10*time.Second, nil); err != nil {
			f.close()
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.cmd.Process.Pid))
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

func (f *forward) close() {
	f.cmd.Process.Kill()
	f.cmd.Wait()
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
