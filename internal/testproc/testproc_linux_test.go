package testproc

import (
	"bufio"
	"encoding/binary"
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

func TestChildOutlivesCallersThread(t *testing.T) {
	// Call Launch from a goroutine locked to a thread other than the main
	// one (the runtime does not end that one), and let the goroutine
	// return locked: the runtime then ends its thread. The child must not die
	// with the thread its caller ran on.
	type launched struct {
		p   *Process
		err error
		tid int
	}
	var l launched
	release := make(chan struct{})
	defer close(release)
	for try := 0; try < 2 && l.tid == 0; try++ {
		c := make(chan launched, 1)
		go func() {
			runtime.LockOSThread()
			tid := syscall.Gettid()
			if tid == syscall.Getpid() {
				// The main thread: keep it, so that the next try
				// runs on another one.
				c <- launched{}
				<-release
				runtime.UnlockOSThread()
				return
			}
			p, err := Launch(Options{}, "sleep", "300")
			c <- launched{p, err, tid}
			// Return locked: the runtime ends this thread.
		}()
		l = <-c
	}
	if l.tid == 0 {
		t.Fatal("two goroutines locked to the main thread")
	}
	if l.err != nil {
		t.Fatal(l.err)
	}
	defer l.p.Stop()
	start := procStart(t, l.p.Pid())
	waitFor(t, 10*time.Second, "ended the thread of Launch's caller", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", l.tid))
		return errors.Is(err, fs.ErrNotExist)
	})
	time.Sleep(100 * time.Millisecond) // the signal, if any, is sent as the thread exits
	if !alive(t, l.p.Pid(), start) {
		t.Fatalf("the child died with the thread that called Launch: %v", l.p.Wait())
	}
}

// TestParseProcAddr reads addresses as a little-endian machine's
// /proc/net/tcp and tcp6 show them.
func TestParseProcAddr(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the cases are written in little-endian order")
	}
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0016":                         "0.0.0.0:22",
		"00000000000000000000000001000000:0050": "[::1]:80",
		"00000000000000000000000000000000:0050": "[::]:80",
		"0000000000000000FFFF00000100007F:01BB": "127.0.0.1:443", // ::ffff:127.0.0.1
	} {
		got, err := parseProcAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "0100007:1F90", "0100007F:1F9", "zz00007F:1F90", "0100007F:zz90"} {
		if got, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q) = %v, want an error", bad, got)
		}
	}
}
