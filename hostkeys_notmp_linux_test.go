package sshdial

import (
	"fmt"
	"os"
	"testing"

	"github.com/sshdial/sshdial/internal/opensshd"
	"golang.org/x/crypto/ssh"
)

// A known_hosts file with capitals in its patterns is read without a
// temporary file: where there is no usable temporary directory (a
// container image with no /tmp, a read-only root filesystem) the host
// keys are still checked, whatever their case, instead of every
// connection failing on "reading known_hosts: stat /tmp". OpenSSH needs
// no temporary directory either.
func TestHostKeyCapitalsWithoutTempDir(t *testing.T) {
	srv := opensshd.Start(t)
	port := hkPort(t, srv)
	unrelated := "Other.Example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	right := unrelated + fmt.Sprintf("[LocalHost]:%d %s", port, ssh.MarshalAuthorizedKey(srv.HostKey))
	wrongKey := hkOtherKey(t)
	changed := unrelated + fmt.Sprintf("[LocalHost]:%d %s", port, ssh.MarshalAuthorizedKey(wrongKey))
	rightFile := hkWrite(t, "known_hosts", []byte(right))
	changedFile := hkWrite(t, "known_hosts", []byte(changed))

	for _, tmp := range []string{"/nonexistent", "/proc"} {
		t.Setenv("TMPDIR", tmp)
		if _, err := hkCheckDialAs(t, srv, "localhost", []string{rightFile}, "", "yes"); err != nil {
			t.Errorf("TMPDIR=%s, the right key under [LocalHost]: %v", tmp, err)
		}
		_, err := hkCheckDialAs(t, srv, "localhost", []string{changedFile}, changedFile, "accept-new")
		hkErr := hkHostKeyError(t, err, ErrHostKeyChanged)
		hkContains(t, hkErr.Error(), changedFile+":2")
		if data, _ := os.ReadFile(changedFile); string(data) != changed {
			t.Errorf("TMPDIR=%s: known_hosts was written:\n%s", tmp, data)
		}
	}
}
