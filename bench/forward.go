package main

import (
	"cmp"
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
	"golang.org/x/net/proxy"
)

// forward is a local forwarding proxy process, started with
// internal/testproc so that on Linux it dies with the harness even when the
// harness is killed: `ssh -N -L` forwarding a local port to each target, or
// `ssh -N -D` serving SOCKS5 on one local port; or the same with the binary
// given by -cli, which takes the same OpenSSH-like flags.
type forward struct {
	name   string // the mode: "ssh -L", "ssh -D", "sshdial -L", "sshdial -D"
	cipher string // "" when the binary chooses
	proc   *testproc.Process
	local  map[string]string // -L: target address -> local address
	socks  string            // -D: the SOCKS5 address
	master int               // the pid of the ControlMaster it goes through, if any: its CPU counts too
}

// forwardKind says which binary a forward runs and how.
type forwardKind struct {
	name  string // the mode's name
	bin   string
	socks bool // -D rather than -L
	// openssh: pass OpenSSH's own options too (-F /dev/null, BatchMode,
	// ExitOnForwardFailure, Compression=no), which a -cli binary need not
	// accept.
	openssh bool
	// baseline: the x/crypto forwarder, which runs with its own cipher
	// choice and without -cli-args.
	baseline bool
	// viaMaster: the -cli binary with -S, through the ControlMaster of
	// each cipher, without -cli-args.
	viaMaster bool
}

var (
	sshL = forwardKind{name: "ssh -L", bin: "ssh", openssh: true}
	sshD = forwardKind{name: "ssh -D", bin: "ssh", socks: true, openssh: true}
)

// xfwdBin is the x/crypto forwarder (bench/xfwd), built by setup for runs
// with -cli.
var xfwdBin string

// cliKinds are the -cli binary's modes, then the x/crypto forwarder's.
func cliKinds() []forwardKind {
	kinds := []forwardKind{
		{name: "sshdial -L", bin: *flagCLI},
		{name: "sshdial -D", bin: *flagCLI, socks: true},
		{name: cliViaMasterL, bin: *flagCLI, viaMaster: true},
		{name: cliViaMasterD, bin: *flagCLI, socks: true, viaMaster: true},
	}
	if xfwdBin != "" {
		kinds = append(kinds,
			forwardKind{name: "x/crypto -L", bin: xfwdBin, baseline: true},
			forwardKind{name: "x/crypto -D", bin: xfwdBin, socks: true, baseline: true})
	}
	return kinds
}

// startForward starts kind with cipher ("" to pass no -c) and waits until
// it listens.
func startForward(e *env, kind forwardKind, cipher string, extra []string) (*forward, error) {
	f := &forward{name: kind.name, cipher: cipher, local: map[string]string{}}
	_, sshdPort, _ := net.SplitHostPort(e.sshd.Addr)
	var args []string
	if kind.openssh {
		args = append(args, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "Compression=no")
	}
	args = append(args, "-N", "-i", e.keyFile, "-o", "UserKnownHostsFile="+e.knownHosts, "-o", "StrictHostKeyChecking=yes", "-p", sshdPort)
	if cipher != "" && kind.openssh {
		args = append(args, "-c", cipher)
	}
	args = append(args, extra...)
	freeLocal := func() (string, error) {
		port, err := testproc.FreePort()
		if err != nil {
			return "", err
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
	}
	var listening []string
	if kind.socks {
		local, err := freeLocal()
		if err != nil {
			return nil, err
		}
		f.socks = local
		args = append(args, "-D", local)
		listening = append(listening, local)
	} else {
		for _, target := range []string{e.source, e.sink, e.echo} {
			local, err := freeLocal()
			if err != nil {
				return nil, err
			}
			f.local[target] = local
			args = append(args, "-L", local+":"+target)
			listening = append(listening, local)
		}
	}
	args = append(args, e.sshd.User+"@127.0.0.1")
	p, err := testproc.Launch(testproc.Options{}, kind.bin, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", kind.name, err)
	}
	f.proc = p
	for _, local := range listening {
		if err := p.WaitListening(local, 10*time.Second); err != nil {
			p.Stop()
			return nil, fmt.Errorf("%s (%s %s): %v\n%s", kind.name, kind.bin, strings.Join(args, " "), err, p.Output())
		}
	}
	return f, nil
}

// dial connects to target through the forward: to its local port for
// target, or through its SOCKS5 server with x/net/proxy's client.
func (f *forward) dial(target string) (net.Conn, error) {
	if f.socks != "" {
		return socksDial(f.socks, target)
	}
	local, ok := f.local[target]
	if !ok {
		return nil, fmt.Errorf("no forward for %s", target)
	}
	return net.Dial("tcp", local)
}

// socksDial connects to target through the SOCKS5 server at addr with
// x/net/proxy's client, and returns the TCP connection to the server once
// the server has answered: x/net/proxy's own wrapper hides CloseWrite,
// which uploads need, and after the reply the connection is the tunnel.
func socksDial(addr, target string) (net.Conn, error) {
	var tcp net.Conn
	d, err := proxy.SOCKS5("tcp", addr, nil, dialerFunc(func(network, a string) (net.Conn, error) {
		c, err := net.Dial(network, a)
		tcp = c
		return c, err
	}))
	if err != nil {
		return nil, err
	}
	if _, err := d.Dial("tcp", target); err != nil {
		return nil, fmt.Errorf("socks5 %s via %s: %w", target, addr, err)
	}
	return tcp, nil
}

type dialerFunc func(network, addr string) (net.Conn, error)

func (f dialerFunc) Dial(network, addr string) (net.Conn, error) { return f(network, addr) }

// cpu returns the process's CPU time so far, and its ControlMaster's, from
// /proc.
func (f *forward) cpu() time.Duration {
	t := procCPU(f.proc.Pid())
	if f.master != 0 {
		t += procCPU(f.master)
	}
	return t
}

// procCPU returns the CPU time so far of process pid, from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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

// peakRSS returns the process's peak resident memory so far (VmHWM), from
// /proc, or 0 if it cannot be read.
func (f *forward) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.proc.Pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// close stops the process and passes on what it printed, if anything.
func (f *forward) close() {
	f.proc.Stop()
	if out := f.proc.Output(); out != "" {
		fmt.Fprintf(os.Stderr, "%s (%s): %s", f.name, cmp.Or(f.cipher, "its own cipher"), out)
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
