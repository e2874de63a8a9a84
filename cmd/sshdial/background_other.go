//go:build !unix

package main

import (
	"context"
	"io"
)

// backgroundSupported says whether -f works here: not on Windows.
const backgroundSupported = false

func goBackground(ctx context.Context, args []string, stderr io.Writer) int { return exitUsage }
func inBackground() bool                                                    { return false }
func backgroundReady(verbose bool) error                                    { return nil }
