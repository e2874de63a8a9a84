package memconn

import (
	"errors"
	"io"
	"net"
	"testing"
)

// TestReadAfterCloseIsErrClosed: as on a socket, a Read blocked when its
// own end closes fails with net.ErrClosed, even when the peer, woken by
// this end's EOF, closes at once: never io.EOF, which would read as the
// peer's clean end.
func TestReadAfterCloseIsErrClosed(t *testing.T) {
	for i := range 2000 {
		a, b := Pipe()
		got := make(chan error, 1)
		go func() {
			_, err := a.Read(make([]byte, 1))
			got <- err
		}()
		go func() {
			if _, err := b.Read(make([]byte, 1)); err == io.EOF {
				b.Close() // the peer answers the EOF at once
			}
		}()
		a.Close()
		if err := <-got; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("run %d: Read after Close: %v, want net.ErrClosed", i, err)
		}
	}
}
