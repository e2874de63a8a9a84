//go:build unix

package sshmux

import (
	"context"
	"errors"
	"math"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Replies that OpenSSH's mux.c never sends for the request they answer:
// each fails with ErrProtocol, and nothing named in them is taken as an
// answer.

// answering is a fake master that answers each request on a control
// connection with what answer returns for its type and id; it takes and
// closes the descriptors of a stdio forward.
func answering(t *testing.T, answer func(typ, id uint32) []byte) *Client {
	t.Helper()
	f := startFake(t, func(c *net.UnixConn) {
		if !handshake(t, c, 4) {
			return
		}
		for {
			m, err := readPacket(c)
			if err != nil {
				return
			}
			typ, id := m.u32(), m.u32()
			if typ == msgCNewStdioFwd {
				for range 2 {
					if fd := recvFd(t, c); fd != nil {
						fd.Close()
					}
				}
			}
			if _, err := c.Write(answer(typ, id)); err != nil {
				return
			}
		}
	})
	return &Client{path: f.path, addr: f.path}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantProtocolError fails unless err wraps ErrProtocol and is no
// *RefusedError.
func wantProtocolError(t *testing.T, what string, err error) {
	t.Helper()
	var refused *RefusedError
	if !errors.Is(err, ErrProtocol) || errors.As(err, &refused) {
		t.Fatalf("%s: %v, want ErrProtocol", what, err)
	}
}

// CloseRemoteFwd succeeds only on MUX_S_OK: mux_master_process_close_fwd
// answers MUX_S_OK or MUX_S_FAILURE, never MUX_S_REMOTE_PORT.
func TestCloseRemoteFwdReplies(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		reply func(id uint32) []byte
		check func(t *testing.T, err error)
	}{
		{"ok", func(id uint32) []byte { return newMsg(msgSOK).u32(id).bytes() },
			func(t *testing.T, err error) {
				if err != nil {
					t.Fatal(err)
				}
			}},
		{"remote port", func(id uint32) []byte { return newMsg(msgSRemotePort).u32(id).u32(40000).bytes() },
			func(t *testing.T, err error) { wantProtocolError(t, "MUX_S_REMOTE_PORT to a close", err) }},
		{"alive", func(id uint32) []byte { return newMsg(msgSAlive).u32(id).u32(42).bytes() },
			func(t *testing.T, err error) { wantProtocolError(t, "MUX_S_ALIVE to a close", err) }},
		{"ok with trailing bytes", func(id uint32) []byte { return newMsg(msgSOK).u32(id).u32(0).bytes() },
			func(t *testing.T, err error) { wantProtocolError(t, "MUX_S_OK with 4 more bytes", err) }},
		{"ok to another request", func(id uint32) []byte { return newMsg(msgSOK).u32(id + 1).bytes() },
			func(t *testing.T, err error) { wantProtocolError(t, "MUX_S_OK with another id", err) }},
		{"failure", func(id uint32) []byte { return newMsg(msgSFailure).u32(id).str("port not forwarded").bytes() },
			func(t *testing.T, err error) {
				var refused *RefusedError
				if !errors.As(err, &refused) || refused.Reason != "port not forwarded" {
					t.Fatalf("%v, want the master's refusal", err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := answering(t, func(typ, id uint32) []byte {
				if typ != msgCCloseFwd {
					t.Errorf("request type %#x", typ)
				}
				return tc.reply(id)
			})
			tc.check(t, c.CloseRemoteFwd(ctx, "", 0, "localhost", 8080))
		})
	}
}

// OpenRemoteFwd takes MUX_S_OK for a fixed port and MUX_S_REMOTE_PORT only
// for port 0, as mux_confirm_remote_forward and the "exists" paths of
// mux_master_process_open_fwd send them; with an error, the port is 0.
func TestOpenRemoteFwdReplies(t *testing.T) {
	ctx := testContext(t)
	ok := func(id uint32) []byte { return newMsg(msgSOK).u32(id).bytes() }
	remotePort := func(p uint32) func(id uint32) []byte {
		return func(id uint32) []byte { return newMsg(msgSRemotePort).u32(id).u32(p).bytes() }
	}
	for _, tc := range []struct {
		name       string
		listenPort int
		reply      func(id uint32) []byte
		want       int // the port; 0: ErrProtocol
	}{
		{"fixed, ok", 8022, ok, 8022},
		{"fixed, another port", 8022, remotePort(9090), 0},
		{"fixed, its own port as allocated", 8022, remotePort(8022), 0},
		{"fixed, ok with trailing bytes", 8022, func(id uint32) []byte { return newMsg(msgSOK).u32(id).u32(8022).bytes() }, 0},
		{"fixed, session opened", 8022, func(id uint32) []byte { return newMsg(msgSSessionOpened).u32(id).u32(3).bytes() }, 0},
		{"dynamic, allocated", 0, remotePort(40000), 40000},
		{"dynamic, ok without a port", 0, ok, 0},
		{"dynamic, port 0", 0, remotePort(0), 0},
		{"dynamic, port 70000", 0, remotePort(70000), 0},
		{"dynamic, allocated with trailing bytes", 0, func(id uint32) []byte {
			return newMsg(msgSRemotePort).u32(id).u32(40000).u32(1).bytes()
		}, 0},
		{"dynamic, allocated for another request", 0, func(id uint32) []byte {
			return newMsg(msgSRemotePort).u32(id + 1).u32(40000).bytes()
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := answering(t, func(typ, id uint32) []byte {
				if typ != msgCOpenFwd {
					t.Errorf("request type %#x", typ)
				}
				return tc.reply(id)
			})
			port, err := c.OpenRemoteFwd(ctx, "", tc.listenPort, "localhost", 8080)
			if tc.want == 0 {
				wantProtocolError(t, "OpenRemoteFwd", err)
			} else if err != nil {
				t.Fatal(err)
			}
			if port != tc.want {
				t.Fatalf("port %d, want %d", port, tc.want)
			}
		})
	}
}

// An alive check is answered with MUX_S_ALIVE and a PID getpid(2) can
// return, nothing after it; the master never refuses one. A refusal of
// HandOver's alive check is no refusal of its forward.
func TestAliveReplies(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		reply func(id uint32) []byte
	}{
		{"PID 0", func(id uint32) []byte { return newMsg(msgSAlive).u32(id).u32(0).bytes() }},
		{"PID 2^31", func(id uint32) []byte { return newMsg(msgSAlive).u32(id).u32(math.MaxInt32 + 1).bytes() }},
		{"trailing bytes", func(id uint32) []byte { return newMsg(msgSAlive).u32(id).u32(42).u32(0).bytes() }},
		{"failure", func(id uint32) []byte { return newMsg(msgSFailure).u32(id).str("no").bytes() }},
		{"permission denied", func(id uint32) []byte { return newMsg(msgSPermission).u32(id).str("Permission denied").bytes() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := answering(t, func(typ, id uint32) []byte {
				if typ == msgCAliveCheck {
					return tc.reply(id)
				}
				return newMsg(msgSSessionOpened).u32(id).u32(3).bytes()
			})
			_, err := Dial(ctx, c.path)
			wantProtocolError(t, "Dial", err)
			_, err = c.Check(ctx)
			wantProtocolError(t, "Check", err)
			ours, theirs := fuzzSocketpair(t)
			defer syscall.Close(ours)
			defer syscall.Close(theirs)
			fw, err := c.HandOver(ctx, "db.internal", 5432, ours)
			if err == nil {
				fw.Close()
			}
			wantProtocolError(t, "HandOver", err)
		})
	}
	t.Run("PID 1", func(t *testing.T) {
		// A master can be PID 1 in a container.
		c := answering(t, func(typ, id uint32) []byte { return newMsg(msgSAlive).u32(id).u32(1).bytes() })
		if pid, err := c.Check(ctx); err != nil || pid != 1 {
			t.Fatalf("Check: %d, %v", pid, err)
		}
	})
}

// The reply to a stdio forward has exactly its fields: nothing after the
// channel number of MUX_S_SESSION_OPENED or the reason of a refusal.
func TestStdioFwdReplies(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		reply func(id uint32) []byte
	}{
		{"opened with trailing bytes", func(id uint32) []byte { return newMsg(msgSSessionOpened).u32(id).u32(3).u32(0).bytes() }},
		{"failure with trailing bytes", func(id uint32) []byte {
			return newMsg(msgSFailure).u32(id).str("Session open refused by peer").u32(0).bytes()
		}},
		{"remote port", func(id uint32) []byte { return newMsg(msgSRemotePort).u32(id).u32(40000).bytes() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := answering(t, func(typ, id uint32) []byte { return tc.reply(id) })
			conn, err := c.OpenStdioFwd(ctx, "db.internal", 5432)
			if err == nil {
				conn.Close()
			}
			wantProtocolError(t, "OpenStdioFwd", err)
		})
	}
}

// RefusedError.Reason is as safe to print as its Error: callers put it in
// messages of their own.
func TestRefusedReasonSanitized(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range []struct{ reason, want string }{
		{"Session open refused by peer", "Session open refused by peer"},
		{"no\x1b]0;title\x07 way\u009b2J\u202eexe\x00", "no?]0;title? way?2J?exe?"},
		{"bad \xff\xfe UTF-8", "bad ?? UTF-8"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200) + "…"},
	} {
		c := answering(t, func(typ, id uint32) []byte {
			return newMsg(msgSFailure).u32(id).str(tc.reason).bytes()
		})
		_, err := c.OpenStdioFwd(ctx, "db.internal", 5432)
		var refused *RefusedError
		if !errors.As(err, &refused) {
			t.Fatalf("OpenStdioFwd: %v, want a *RefusedError", err)
		}
		if refused.Reason != tc.want {
			t.Errorf("Reason %q, want %q", refused.Reason, tc.want)
		}
		checkMessage(t, err)
		_, err = c.OpenRemoteFwd(ctx, "", 0, "localhost", 8080)
		if !errors.As(err, &refused) || refused.Reason != tc.want {
			t.Errorf("OpenRemoteFwd: %v, want Reason %q", err, tc.want)
		}
	}
}

// sanitize allocates for what it keeps, not for the whole text: a reason
// can be as long as a packet (256 KiB).
func TestSanitizeAlloc(t *testing.T) {
	long := strings.Repeat("x", maxPacket)
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sanitize(long)
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > 16<<10 {
		t.Fatalf("sanitize allocated %d bytes for a %d-byte text", least, len(long))
	}
}
