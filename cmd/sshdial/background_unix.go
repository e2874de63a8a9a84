//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// backgroundSupported says whether -f works here.
const backgroundSupported = true

// backgroundEnv, in the environment of the process -f starts, names the
// file descriptor on which it says it is ready.
const backgroundEnv = "SSHDIAL_BACKGROUND_READY"

// goBackground is -f, as ssh -f does it: the forwards are set up in the
// foreground (passphrases are asked on the terminal, failures are reported
// with their exit codes), then the command goes on in the background and
// the foreground returns 0. Go cannot fork, so the command starts itself
// again with the same arguments; that process says when it is ready, then
// leaves the terminal's session. goBackground returns the foreground's
// exit code: 0 once the background process is ready, else that process's.
func goBackground(ctx context.Context, args []string, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "sshdial: -f: %v\n", err)
		return exitError
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "sshdial: -f: %v\n", err)
		return exitError
	}
	defer r.Close()
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), backgroundEnv+"=3")
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Stderr = stderr            // stdout: /dev/null; it writes nothing there
	if err := cmd.Start(); err != nil {
		w.Close()
		fmt.Fprintf(stderr, "sshdial: -f: %v\n", err)
		return exitError
	}
	w.Close()
	ready := make(chan bool, 1)
	go func() {
		var b [16]byte
		n, _ := r.Read(b[:])
		ready <- n > 0
	}()
	select {
	case ok := <-ready:
		if ok {
			cmd.Process.Release()
			return exitOK
		}
	case <-ctx.Done():
		// SIGINT or SIGTERM while it sets up: it does not go on alone.
		cmd.Process.Signal(syscall.SIGTERM)
		if <-ready {
			cmd.Process.Signal(syscall.SIGTERM) // ready meanwhile: its own shutdown
		}
	}
	// It ended before it was ready: its exit code is ours.
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(stderr, "sshdial: -f: %v\n", err)
	}
	return exitError
}

// inBackground reports whether this process is the one -f started.
func inBackground() bool { return os.Getenv(backgroundEnv) != "" }

// backgroundReady tells the foreground that the forwards are up, and
// leaves the terminal's session, so that its hangup and ^C no longer reach
// this process.
func backgroundReady(verbose bool) error {
	fd, err := strconv.Atoi(os.Getenv(backgroundEnv))
	if err != nil {
		return fmt.Errorf("-f: bad %s", backgroundEnv)
	}
	os.Unsetenv(backgroundEnv) // not for the commands it starts (ProxyCommand)
	f := os.NewFile(uintptr(fd), "ready")
	_, err = f.Write([]byte("ready\n"))
	f.Close()
	if err != nil {
		return fmt.Errorf("-f: telling the foreground: %w", err)
	}
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("-f: setsid: %w", err)
	}
	// As ssh -f: stdin and stdout, and stderr unless -v, go to /dev/null,
	// so that whoever reads the foreground's output sees its end.
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		unix.Dup2(int(null.Fd()), 0)
		unix.Dup2(int(null.Fd()), 1)
		if !verbose {
			unix.Dup2(int(null.Fd()), 2)
		}
		null.Close()
	}
	return nil
}
