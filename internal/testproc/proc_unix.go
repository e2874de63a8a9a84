//go:build unix

package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// setSysProcAttr puts the command in its own process group, so that Stop
// also kills the processes it forks into that group, runs it as opts.User,
// and on Linux asks for the parent-death signal.
func setSysProcAttr(cmd *exec.Cmd, opts Options) error {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if opts.User != "" {
		u, err := user.Lookup(opts.User)
		if err != nil {
			return err
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return fmt.Errorf("user %s: uid %q: %w", opts.User, u.Uid, err)
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return fmt.Errorf("user %s: gid %q: %w", opts.User, u.Gid, err)
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	setParentDeathSignal(attr)
	cmd.SysProcAttr = attr
	return nil
}

// killGroup sends SIGKILL to the process group that p leads.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}
