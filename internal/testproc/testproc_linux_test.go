package testproc

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStart returns the start time of process pid from /proc, which tells
// the process apart from a later one that reuses its PID.
func procStart(t *testing.T, pid int) string {
	t.Helper()
	_, start, err := procStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return start
}

func procStat(pid int) (state, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", err
	}
	s := string(b)
	// Fields after the command name in parentheses: state is field 3 of
	// proc_pid_stat(5), starttime field 22.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return "", "", fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return f[0], f[19], nil
}

// alive reports whether the process pid that started at start still runs.
// A zombie is dead: once reparented, nobody here may reap it.
func alive(t *testing.T, pid int, start string) bool {
	t.Helper()
	state, s, err := procStat(pid)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s == start && state != "Z" && state != "X"
}

// killIfAlive ends a process that a failing test left behind.
func killIfAlive(t *testing.T, pid int, start string) {
	if alive(t, pid, start) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// readLine reads one line of r within limit.
func readLine(t *testing.T, r *bufio.Reader, limit time.Duration) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	c := make(chan result, 1)
	go func() {
		line, err := r.ReadString('\n')
		c <- result{line, err}
	}()
	select {
	case res := <-c:
		if res.err != nil {
			t.Fatalf("reading a line: %v (got %q)", res.err, res.line)
		}
		return strings.TrimSpace(res.line)
	case <-time.After(limit):
		t.Fatalf("no line after %v", limit)
		return ""
	}
}

func TestStopKillsProcessGroup(t *testing.T) {
	p := Start(t, Options{}, "sh", "-c", "sleep 300 & echo $!; wait")
	var pid int
	waitFor(t, 10*time.Second, "printed the sleep's PID", func() bool {
		var err error
		pid, err = strconv.Atoi(strings.TrimSpace(p.Output()))
		return err == nil
	})
	leader, grandchild := procStart(t, p.Pid()), procStart(t, pid)
	t.Cleanup(func() { killIfAlive(t, pid, grandchild) })

	p.Stop()
	if alive(t, p.Pid(), leader) {
		t.Error("the process runs after Stop")
	}
	waitFor(t, 10*time.Second, "killed the process it forked", func() bool {
		return !alive(t, pid, grandchild)
	})
}

func TestChildDiesWithParent(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=parent")
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		helper.Process.Kill()
		helper.Wait()
	})
	line := readLine(t, bufio.NewReader(out), 30*time.Second)
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("the helper said %q", line)
	}
	start := procStart(t, pid)
	t.Cleanup(func() { killIfAlive(t, pid, start) })
	if !alive(t, pid, start) {
		t.Fatal("the child is not running before its parent is killed")
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	waitFor(t, 10*time.Second, "killed the child of a killed parent", func() bool {
		return !alive(t, pid, start)
	})
}

func TestChildOutlivesThreadExits(t *testing.T) {
	p := Start(t, Options{}, "sleep", "300")
	start := procStart(t, p.Pid())
	// A goroutine that returns while locked to its thread makes the
	// runtime end that thread. Do it often, on every thread the scheduler
	// offers, to end the thread that started sleep if any goroutine could
	// run on it.
	for range 200 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(t, p.Pid(), start) {
		t.Fatalf("the child died when threads of this program exited: %v", p.Wait())
	}
}
