//go:build !unix

package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// setSysProcAttr can only refuse opts.User: without Unix process groups and
// credentials there is nothing to set.
func setSysProcAttr(_ *exec.Cmd, opts Options) error {
	if opts.User != "" {
		return fmt.Errorf("running as user %s is not supported on %s", opts.User, runtime.GOOS)
	}
	return nil
}

// killGroup kills p alone: there is no process group to kill.
func killGroup(p *os.Process) {
	p.Kill()
}
