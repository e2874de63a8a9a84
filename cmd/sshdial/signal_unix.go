//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyStatus returns a channel that receives SIGUSR1, which asks for the
// status summary, and the function that stops it.
func notifyStatus() (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	return c, func() { signal.Stop(c) }
}
