//go:build unix

package sshdial_test

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/sshmux"
)

// BenchmarkControlPing measures 64-byte round trips to an echo target
// through a ControlMaster: on sshmux's socketpair conn itself ("mux raw"),
// on the *Conn the Dialer makes of it ("Conn via master"), and, for
// comparison, on a *Conn over the Dialer's own SSH connection.
func BenchmarkControlPing(b *testing.B) {
	srv := opensshd.Start(b)
	m := srv.StartMaster(b)
	target := serve(b, "tcp", echo).Addr().(*net.TCPAddr)
	ping := func(b *testing.B, c net.Conn) {
		buf := make([]byte, 64)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("mux raw", func(b *testing.B) {
		client, err := sshmux.Dial(context.Background(), m.Sock)
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.OpenStdioFwd(context.Background(), "127.0.0.1", target.Port)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ping(b, c)
	})
	b.Run("Conn via master", func(b *testing.B) {
		d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
		defer d.Close()
		c, err := d.Dial("tcp", target.String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ping(b, c)
	})
	b.Run("Conn own channel", func(b *testing.B) {
		d := sshdial.New(srv.Dial(b))
		defer d.Close()
		c, err := d.Dial("tcp", target.String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ping(b, c)
	})
}

// BenchmarkControlDownload measures downloads through a ControlMaster, as
// BenchmarkControlPing does round trips.
func BenchmarkControlDownload(b *testing.B) {
	srv := opensshd.Start(b)
	m := srv.StartMaster(b)
	const size = 32 << 20
	target := serve(b, "tcp", func(c net.Conn) {
		buf := make([]byte, 256<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}).Addr().(*net.TCPAddr)
	download := func(b *testing.B, dial func() (net.Conn, error)) {
		b.SetBytes(size)
		buf := make([]byte, 256<<10)
		for i := 0; i < b.N; i++ {
			c, err := dial()
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
			c.Close()
			if err != nil || n != size {
				b.Fatal(n, err)
			}
		}
	}
	b.Run("mux raw", func(b *testing.B) {
		client, err := sshmux.Dial(context.Background(), m.Sock)
		if err != nil {
			b.Fatal(err)
		}
		download(b, func() (net.Conn, error) { return client.OpenStdioFwd(context.Background(), "127.0.0.1", target.Port) })
	})
	b.Run("Conn via master", func(b *testing.B) {
		d := sshdial.New(nil, sshdial.WithControl(m.Sock, sshdial.ControlRequired))
		defer d.Close()
		download(b, func() (net.Conn, error) { return d.Dial("tcp", target.String()) })
	})
}
