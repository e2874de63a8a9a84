package sshdial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// A ProxyCommand of ssh_config(5) is run as ssh(1) runs it: through the
// user's shell ($SHELL, else /bin/sh) as "exec command", or cmd.exe /C on
// Windows, with the SSH connection over its standard input and output and
// its standard error passed through to ours. commandConn is that
// connection.
//
// Concurrency: Read, Write and Close may be called concurrently (x/crypto
// reads and writes from different goroutines); Close is idempotent.
type commandConn struct {
	cmd  *exec.Cmd
	r    *os.File // the command's standard output, our end
	w    *os.File // the command's standard input, our end
	addr commandAddr

	closeOnce sync.Once
	exited    chan struct{} // closed once the command has exited and was reaped
	waitErr   error         // the command's exit; set before exited is closed
}

// commandAddr is both addresses of a commandConn.
type commandAddr struct{ host string }

func (a commandAddr) Network() string { return "proxycommand" }
func (a commandAddr) String() string  { return "ProxyCommand for " + a.host }

// proxyCommandStopWait is how long a command may take to exit after the
// SIGHUP of Close (ssh(1) sends SIGHUP too) before it is killed.
const proxyCommandStopWait = 2 * time.Second

// startProxyCommand starts command (its tokens already expanded) for host.
// Errors name the host, not the command, which may hold anything.
func startProxyCommand(command, host string) (*commandConn, error) {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.Command("cmd.exe", "/C", command)
	} else {
		shell := os.Getenv("SHELL")
		if shell == "" {
			shell = "/bin/sh"
		}
		cmd = exec.Command(shell, "-c", "exec "+command)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sshdial: ProxyCommand for %s: %w", host, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("sshdial: ProxyCommand for %s: %w", host, err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	err = cmd.Start()
	inR.Close() // the command has its own copies now
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("sshdial: starting the ProxyCommand for %s: %w", host, err)
	}
	c := &commandConn{cmd: cmd, r: outR, w: inW, addr: commandAddr{host}, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// Read reads the command's standard output. When it ends because the
// command failed, the error says so.
func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		err = c.failed(err)
	}
	return n, err
}

// Write writes to the command's standard input. When that fails because
// the command failed, the error says so.
func (c *commandConn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		err = c.failed(err)
	}
	return n, err
}

// failed returns err, or, if the pipes failed because the command exited
// with an error, an error that says so (giving it up to a second to exit).
func (c *commandConn) failed(err error) error {
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) {
		return err
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("sshdial: the ProxyCommand for %s ended (%v): %w", c.addr.host, c.waitErr, io.ErrUnexpectedEOF)
		}
	case <-t.C: // still running
	}
	return err
}

// Close closes both pipes and sends the command SIGHUP, as ssh(1) does (on
// Windows, kills it), and returns: it does not wait for the command. One
// that is still running proxyCommandStopWait later is killed; a goroutine
// reaps it either way.
func (c *commandConn) Close() error {
	c.closeOnce.Do(func() {
		c.w.Close()
		c.r.Close()
		if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil && !errors.Is(err, os.ErrProcessDone) {
			c.cmd.Process.Kill()
		}
		go func() {
			t := time.NewTimer(proxyCommandStopWait)
			defer t.Stop()
			select {
			case <-c.exited:
			case <-t.C:
				c.cmd.Process.Kill()
			}
		}()
	})
	return nil
}

func (c *commandConn) LocalAddr() net.Addr  { return c.addr }
func (c *commandConn) RemoteAddr() net.Addr { return c.addr }

// SetDeadline sets both pipes' deadlines; where pipes take none (Windows)
// it returns that error, and x/crypto's handshake goes on without.
func (c *commandConn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.SetReadDeadline(t), c.w.SetWriteDeadline(t))
}
func (c *commandConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *commandConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }
