package sshdial_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
)

// sshPacket frames payload as an unencrypted SSH binary packet.
func sshPacket(payload []byte) []byte {
	pad := 8 - (len(payload)+5)%8
	if pad < 4 {
		pad += 8
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+pad))
	b = append(b, byte(pad))
	b = append(b, payload...)
	return append(b, make([]byte, pad)...)
}

// A server that misbehaves before the login (a tarpit of lines before the
// version, an endless version line, a close in the middle of the key
// exchange, a key exchange packet of absurd length, a disconnect with
// terminal escapes) makes Connect fail within ConnectTimeout, with an
// error that carries no raw control character, and leaves no goroutine
// (goleak in TestMain).
func TestConnectHostileHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(c net.Conn)
	}{
		{"tarpit", func(c net.Conn) {
			for i := 0; i < 200; i++ { // 20 s at most
				if _, err := io.WriteString(c, "\x1b[31mnot yet\x1b]0;title\x07\r\n"); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond) // on purpose: a server that trickles is what is under test
			}
		}},
		{"endless version line", func(c net.Conn) {
			io.WriteString(c, "SSH-2.0-"+strings.Repeat("\x1b[5m", 100000))
			io.Copy(io.Discard, c)
		}},
		{"close mid-kex", func(c net.Conn) {
			io.WriteString(c, "SSH-2.0-evil\r\n")
			c.Read(make([]byte, 4096))
			c.Close()
		}},
		{"huge packet", func(c net.Conn) {
			io.WriteString(c, "SSH-2.0-evil\r\n")
			c.Write([]byte{0x7f, 0xff, 0xff, 0xff, 4, 20})
			io.Copy(io.Discard, c)
		}},
		{"disconnect with escapes", func(c net.Conn) {
			io.WriteString(c, "SSH-2.0-\x1b[31mevil\r\n")
			msg := binary.BigEndian.AppendUint32([]byte{1}, 2)
			text := "\x1b[31mRED\x1b]0;title\x07\r\nsshdial: fake"
			msg = append(binary.BigEndian.AppendUint32(msg, uint32(len(text))), text...)
			msg = binary.BigEndian.AppendUint32(msg, 0)
			c.Write(sshPacket(msg))
			io.Copy(io.Discard, c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newHome(t)
			l := testutil.Serve(t, "tcp", tc.serve)
			start := time.Now()
			_, err := sshdial.Connect(context.Background(), "tester@"+l.Addr().String(),
				sshdial.WithConnectTimeout(2*time.Second), sshdial.WithStrictHostKeyChecking("yes"))
			took := time.Since(start)
			t.Logf("%v: %v", took, err)
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			if took > 10*time.Second {
				t.Errorf("Connect took %v with ConnectTimeout 2s", took)
			}
			if i := strings.IndexFunc(err.Error(), func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
				t.Errorf("the error holds a raw control character: %q", err.Error())
			}
			// OpenSSH says "Connection timed out during banner exchange"
			// for a tarpit too: lines that are no version line are no
			// banner.
			if tc.name == "tarpit" && (!errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "banner exchange")) {
				t.Errorf("a tarpit: %v, want a timeout during banner exchange", err)
			}
		})
	}
}
