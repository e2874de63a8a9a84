// Package portwait waits for a process started by a test or the benchmark
// harness to accept TCP connections.
package portwait

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrExited is returned by Wait when the process exited first.
var ErrExited = errors.New("the process exited before it listened")

// Wait polls addr until it accepts a TCP connection, the process exits
// (exited is closed; nil means not watched) or timeout passes.
func Wait(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return ErrExited
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
