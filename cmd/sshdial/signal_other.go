//go:build !unix

package main

import "os"

// notifyStatus: without SIGUSR1, the summary comes from --status only.
func notifyStatus() (<-chan os.Signal, func()) {
	return nil, func() {}
}
