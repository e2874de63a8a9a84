package sshdial_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/require"
)

// TestInputFatalToSSHDIsRefusedHere: what OpenSSH's sshd treats as a fatal
// protocol error drops the whole SSH connection with every channel on it:
// a string with an embedded NUL (sshpkt_get_cstring) in a direct-tcpip,
// direct-streamlocal, tcpip-forward or streamlocal-forward request, and a
// packet over 256 kB (PACKET_MAX_SIZE). Such dials and listens fail here,
// before anything is sent, and a Conn already open on the same SSH
// connection goes on working. The limits let through what is legitimate:
// a 255-byte host reaches the server and is answered by it.
func TestInputFatalToSSHDIsRefusedHere(t *testing.T) {
	_, client := newOpenSSH(t)
	d := sshdial.New(client)
	defer d.Close()
	target := testutil.EchoServer(t, "tcp").Addr().String()
	c, err := d.Dial("tcp", target)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, testutil.RoundTrip(c, "before"))

	huge := strings.Repeat("a", 300<<10)
	dials := []struct{ network, address string }{
		{"tcp", "a\x00b:80"},
		{"tcp", "a\x00:80"},
		{"tcp4", "a\x00b:80"},
		{"tcp", huge + ":80"},
		{"tcp", strings.Repeat("a", 256) + ":80"},
		{"unix", "/tmp/a\x00b"},
		{"unix", "/" + huge},
	}
	for _, dc := range dials {
		conn, err := d.Dial(dc.network, dc.address)
		require.Nil(t, conn)
		var ae *net.AddrError
		require.ErrorAs(t, err, &ae, "%s dial of %.40q: refused before it is sent", dc.network, dc.address)
		require.Less(t, len(err.Error()), 300, "the error quotes a short part of the address")
		require.NoError(t, testutil.RoundTrip(c, "after a dial of "+dc.network), "the SSH connection is intact")
	}
	listens := []struct{ network, address string }{
		{"tcp", "a\x00b:0"},
		{"tcp", huge + ":0"},
		{"tcp", "[" + strings.Repeat("a", 256) + "]:0"},
		{"unix", "/tmp/a\x00b"},
		{"unix", "/" + huge},
	}
	for _, lc := range listens {
		l, err := d.Listen(context.Background(), lc.network, lc.address)
		require.Nil(t, l)
		var ae *net.AddrError
		require.ErrorAs(t, err, &ae, "%s listen on %.40q: refused before it is sent", lc.network, lc.address)
		require.NoError(t, testutil.RoundTrip(c, "after a listen on "+lc.network), "the SSH connection is intact")
	}

	// The longest name DNS allows is the server's to judge.
	name := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63)
	require.Len(t, name, 255)
	_, err = d.Dial("tcp", name+":80")
	require.ErrorIs(t, err, sshdial.ErrTargetUnreachable, "sshd answers for a 255-byte host")
	var ae *net.AddrError
	require.False(t, errors.As(err, &ae))
	require.NoError(t, testutil.RoundTrip(c, "after"))
}
