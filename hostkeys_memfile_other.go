//go:build !linux

package sshdial

import "errors"

// memoryFile is a memory file where the system has them; here it has not,
// and the caller makes a temporary file instead.
func memoryFile([]byte) (string, func(), error) {
	return "", nil, errors.ErrUnsupported
}
