//go:build !linux

package testproc

// listensOn cannot tell which process listens on a port outside Linux.
func listensOn(pid int, addr string) (owned, known bool) { return false, false }
