package main

import "time"

// eventually calls cond every interval until it returns true, for at most
// limit, and reports whether it did. It is the one polling loop of these
// tests, which watch other processes (the command, sshd, a terminal) and
// have no event to wait on but what those show.
func eventually(limit, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(interval)
	}
	return true
}
