package sshdial_test

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/stretchr/testify/require"
)

// The hot paths of a Conn against x/crypto's own tunnel conn ("raw"), both
// through sshtest on loopback, with allocation counts. bench/ compares whole
// transfers against OpenSSH and TCP.

func benchDialers(b *testing.B) map[string]func(addr string) (net.Conn, error) {
	_, client := newSSHTest(b)
	d := sshdial.New(client)
	return map[string]func(string) (net.Conn, error){
		"raw":     func(a string) (net.Conn, error) { return client.Dial("tcp", a) },
		"sshdial": func(a string) (net.Conn, error) { return d.Dial("tcp", a) },
	}
}

func BenchmarkPingPong64(b *testing.B) {
	for name, dial := range benchDialers(b) {
		b.Run(name, func(b *testing.B) {
			l := serve(b, "tcp", echo)
			c, err := dial(l.Addr().String())
			require.NoError(b, err)
			defer c.Close()
			msg := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	benchStream(b, func(c net.Conn) { io.Copy(io.Discard, c) }, func(c net.Conn, buf []byte) error {
		_, err := c.Write(buf)
		return err
	})
}

func BenchmarkRead(b *testing.B) {
	benchStream(b, endlessSource, func(c net.Conn, buf []byte) error {
		_, err := io.ReadFull(c, buf)
		return err
	})
}

// BenchmarkCopyFrom is io.Copy out of a conn into a writer, which takes
// the sshdial Conn's WriteTo: each op moves len(buf) bytes.
func BenchmarkCopyFrom(b *testing.B) {
	benchStream(b, endlessSource, func(c net.Conn, buf []byte) error {
		_, err := io.Copy(&stopWriter{left: len(buf)}, c)
		if err == errStop {
			return nil
		}
		return err
	})
}

// endlessSource writes to c until that fails.
func endlessSource(c net.Conn) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

var errStop = errors.New("enough")

// stopWriter takes left bytes, then fails with errStop.
type stopWriter struct{ left int }

func (w *stopWriter) Write(p []byte) (int, error) {
	if len(p) < w.left {
		w.left -= len(p)
		return len(p), nil
	}
	n := w.left
	w.left = 0
	return n, errStop
}

// benchStream runs op with 1 KiB and 64 KiB buffers on a raw and an sshdial
// conn to a target served by handle.
func benchStream(b *testing.B, handle func(net.Conn), op func(c net.Conn, buf []byte) error) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for name, dial := range benchDialers(b) {
			b.Run(name+"/"+byteSize(size), func(b *testing.B) {
				l := serve(b, "tcp", handle)
				c, err := dial(l.Addr().String())
				require.NoError(b, err)
				defer c.Close()
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := op(c, buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSetDeadline is the per-request deadline churn of go-redis and
// mysql: set, use, clear.
func BenchmarkSetDeadline(b *testing.B) {
	_, client := newSSHTest(b)
	l := serve(b, "tcp", echo)
	c, err := sshdial.New(client).Dial("tcp", l.Addr().String())
	require.NoError(b, err)
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		c.SetDeadline(time.Now().Add(time.Second))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.SetDeadline(time.Time{})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
