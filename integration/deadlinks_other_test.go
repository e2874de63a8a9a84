//go:build !linux

package integration

import (
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
)

// openSSHDeadLinks is empty where sshd's session processes cannot be found
// to stop them (they are found through /proc on Linux).
func openSSHDeadLinks(t *testing.T) []deadLink { return nil }

// resumeOnCleanup does nothing: nothing stops sshd here.
func resumeOnCleanup(t testing.TB, srv *opensshd.Server) {}
