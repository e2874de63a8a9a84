package sshdial_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
)

// OpenSSH's sshd as a fault peer: a stall is SIGSTOP of the listener and of
// every per-connection process (as if the network stopped delivering), a
// drop is SIGKILL of the per-connection processes (the kernel then closes
// their sockets, as when sshd dies).
func init() {
	faultPeers = append(faultPeers, struct {
		name  string
		start func(t *testing.T) *faultServer
	}{"openssh", func(t *testing.T) *faultServer {
		srv := opensshd.Start(t)
		listener := srv.Cmd.Process.Pid
		signal := func(sig syscall.Signal, withListener bool) {
			pids := descendants(listener)
			if withListener {
				pids = append(pids, listener)
			}
			for _, pid := range pids {
				syscall.Kill(pid, sig)
			}
		}
		// Stopped processes cannot be killed by the cleanup's SIGKILL
		// until they are continued: resume first (cleanups run last
		// registered first, and opensshd.Start registered its own before).
		t.Cleanup(func() { signal(syscall.SIGCONT, true) })
		return &faultServer{
			addr:   srv.Addr,
			config: srv.ClientConfig(),
			stall:  func() { signal(syscall.SIGSTOP, true) },
			resume: func() { signal(syscall.SIGCONT, true) },
			drop:   func() { signal(syscall.SIGKILL, false) },
		}
	}})
}

// descendants returns the processes below pid (sshd's per-connection
// processes start their own sessions, so the listener's process group does
// not hold them).
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
