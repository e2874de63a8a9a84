//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package main

import "errors"

// echoOff is not done here: term.ReadPassword turns echo off itself, once
// it reads.
func echoOff(fd int) error { return errors.ErrUnsupported }
