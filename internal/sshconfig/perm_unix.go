//go:build unix

package sshconfig

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwnerPerm refuses, as ssh does for the user's config file and
// included files, a file that others may write or that neither root nor
// the user owns.
func checkOwnerPerm(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if (st.Uid != 0 && int(st.Uid) != os.Getuid()) || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("sshconfig: bad owner or permissions on %s (it must be yours or root's, and not writable by others)", path)
	}
	return nil
}
