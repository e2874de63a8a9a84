//go:build !unix

package main

import "io"

// backgroundSupported says whether -f works here: not on Windows.
const backgroundSupported = false

func goBackground(args []string, stderr io.Writer) int { return exitUsage }
func inBackground() bool                               { return false }
func backgroundReady() error                           { return nil }
