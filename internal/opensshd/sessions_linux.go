package opensshd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Sessions returns the processes that serve sshd's connections: every
// process below the listening sshd. They start sessions of their own, so
// signalling sshd's process group does not reach them.
func (s *Server) Sessions() []int {
	return descendants(s.Cmd.Process.Pid)
}

// Signal sends sig to every session process, and to the listening sshd too
// when listener is true. SIGSTOP of all of them is a stalled network,
// SIGKILL of the sessions a dropped connection; SIGCONT resumes.
func (s *Server) Signal(sig syscall.Signal, listener bool) {
	pids := s.Sessions()
	if listener {
		pids = append(pids, s.Cmd.Process.Pid)
	}
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
}

// descendants returns the processes below pid, from /proc.
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
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
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
