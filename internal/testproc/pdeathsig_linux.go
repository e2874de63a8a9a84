package testproc

import "syscall"

// setParentDeathSignal makes the kernel send SIGKILL to the process when
// the thread that started it exits; Process.run keeps that thread alive
// until the process has exited, so in effect when this program dies.
//
// Credential, if set, is applied before the signal is set, so the change of
// user does not clear it. A program that changes its own user later (such
// as a server run as root with --user) clears it then.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
