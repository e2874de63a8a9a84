//go:build unix

package sshmux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets give this client arbitrary bytes as a master's replies
// and compare what it makes of them with refConversation, a reading of
// PROTOCOL.mux and OpenSSH's mux.c written independently of mux.go:
//
//   - FuzzMuxCodec: the packet decoder (readPacket, on a whole reader and
//     one byte at a time) and each reply parser (checkHello, parseAlive,
//     parseSessionOpened, parseFwdReply). No panic; a length under 4 or
//     over maxPacket is a protocol error, before any allocation for it
//     (a length of 4 GB allocates nothing), and no packet allocates more
//     than maxPacket; a short packet is io.ErrUnexpectedEOF; every error
//     is ErrProtocol or a *RefusedError with the master's reason made
//     printable (refShown), whose message is printable and bounded. A
//     reply must have exactly its fields, of the type and with the values
//     that mux.c sends for the request.
//   - FuzzMasterReplies: a fake master on a real Unix socket answers every
//     control connection with the fuzzed bytes, then ends its side (or,
//     "stalled", stays silent until the call returned), while Dial,
//     OpenStdioFwd (then a Read that finds the forward's EOF and makes the
//     alive checks), HandOver (then Wait), OpenRemoteFwd (of port 0 or of
//     a fixed port) or CloseRemoteFwd runs. The call must succeed
//     exactly when the bytes hold the right replies, with their values,
//     and otherwise fail with the right kind of error (ErrProtocol,
//     *RefusedError, ErrNoMaster for an end of the bytes, the context's
//     error for a stalled master), within a bound, leaving no goroutine
//     and no descriptor behind.
//
// Run with: go test -run XXX -fuzz '^FuzzMasterReplies$' -parallel 1 ./internal/sshmux
// (and FuzzMuxCodec).

// Reference reading of the master's replies.

type refKind int

const (
	refOK       refKind = iota
	refEOF              // the bytes ended before the reply did
	refProtocol         // not a reply PROTOCOL.mux allows here
	refRefused          // MUX_S_FAILURE or MUX_S_PERMISSION_DENIED
)

var refKindNames = []string{"ok", "end of the bytes", "protocol error", "refused"}

func (k refKind) String() string { return refKindNames[k] }

type refResult struct {
	kind   refKind
	denied bool
	reason string
	value  uint32 // the PID of MUX_S_ALIVE, the port of MUX_S_REMOTE_PORT
}

// refSplit splits the first packet off b. A packet is a uint32 length of 4
// (its type) to 256 KiB (this client's bound; the master's replies are a
// few dozen bytes), then that many bytes.
func refSplit(b []byte) (body, rest []byte, r refResult) {
	if len(b) < 4 {
		return nil, nil, refResult{kind: refEOF}
	}
	n := binary.BigEndian.Uint32(b)
	if n < 4 || n > 256<<10 {
		return nil, nil, refResult{kind: refProtocol}
	}
	if uint64(len(b)-4) < uint64(n) {
		return nil, nil, refResult{kind: refEOF}
	}
	return b[4 : 4+n], b[4+n:], refResult{kind: refOK}
}

// refFields reads a body as a list of uint32 and string fields.
type refFields struct {
	b  []byte
	ok bool
}

func (f *refFields) u32() uint32 {
	if !f.ok || len(f.b) < 4 {
		f.ok = false
		return 0
	}
	v := binary.BigEndian.Uint32(f.b)
	f.b = f.b[4:]
	return v
}

func (f *refFields) str() string {
	n := f.u32()
	if !f.ok || uint64(n) > uint64(len(f.b)) {
		f.ok = false
		return ""
	}
	s := string(f.b[:n])
	f.b = f.b[n:]
	return s
}

// refStep judges one reply body.
type refStep func(body []byte) refResult

// refHello: MUX_MSG_HELLO, version 4, then name/value string pairs to the
// end of the packet.
func refHello(body []byte) refResult {
	f := refFields{b: body, ok: true}
	if f.u32() != 1 || f.u32() != 4 || !f.ok {
		return refResult{kind: refProtocol}
	}
	for f.ok && len(f.b) > 0 {
		f.str()
		f.str()
	}
	if !f.ok {
		return refResult{kind: refProtocol}
	}
	return refResult{kind: refOK}
}

// refAnswer is a success reply that a request may get: its type, and
// whether it carries a uint32 after the request id, with the values
// allowed for it.
type refAnswer struct {
	typ   uint32
	value bool
	valid func(v uint32) bool // nil: any
}

// refReply: the reply to request id, one of answers with exactly its
// fields, or, when the master may refuse the request (refusable),
// MUX_S_FAILURE or MUX_S_PERMISSION_DENIED with exactly a reason. The
// master never puts bytes after a reply's fields, never answers with
// MUX_S_EXIT_MESSAGE (a session's), and answers with the request's id.
func refReply(id uint32, refusable bool, answers ...refAnswer) refStep {
	return func(body []byte) refResult {
		f := refFields{b: body, ok: true}
		typ, rid := f.u32(), f.u32()
		if !f.ok || rid != id || typ == msgSExitMessage {
			return refResult{kind: refProtocol}
		}
		if refusable && (typ == msgSFailure || typ == msgSPermission) {
			reason := f.str()
			if !f.ok || len(f.b) != 0 {
				return refResult{kind: refProtocol}
			}
			return refResult{kind: refRefused, denied: typ == msgSPermission, reason: refShown(reason)}
		}
		for _, a := range answers {
			if typ != a.typ {
				continue
			}
			var v uint32
			if a.value {
				v = f.u32()
			}
			if !f.ok || len(f.b) != 0 || (a.valid != nil && !a.valid(v)) {
				return refResult{kind: refProtocol}
			}
			return refResult{kind: refOK, value: v}
		}
		return refResult{kind: refProtocol}
	}
}

// refAlive: MUX_S_ALIVE with the master's PID, a pid_t from getpid(2):
// 1 to 2^31-1. The master never refuses an alive check.
func refAlive(id uint32) refStep {
	return refReply(id, false, refAnswer{msgSAlive, true, func(v uint32) bool { return v >= 1 && v <= 1<<31-1 }})
}

// refOpened: MUX_S_SESSION_OPENED with the master's channel number.
func refOpened(id uint32) refStep {
	return refReply(id, true, refAnswer{msgSSessionOpened, true, nil})
}

// refOpenFwd: the answer to MUX_C_OPEN_FWD of a remote forward of
// listenPort (mux.c, mux_master_process_open_fwd and
// mux_confirm_remote_forward): MUX_S_OK for a fixed port, the allocated
// port (1-65535) in MUX_S_REMOTE_PORT for port 0. The result's value is
// the port the forward listens on.
func refOpenFwd(id, listenPort uint32) refStep {
	if listenPort != 0 {
		ok := refReply(id, true, refAnswer{msgSOK, false, nil})
		return func(body []byte) refResult {
			r := ok(body)
			if r.kind == refOK {
				r.value = listenPort
			}
			return r
		}
	}
	return refReply(id, true, refAnswer{msgSRemotePort, true, func(v uint32) bool { return v >= 1 && v <= 65535 }})
}

// refCloseFwd: the answer to MUX_C_CLOSE_FWD (mux.c,
// mux_master_process_close_fwd): MUX_S_OK only.
func refCloseFwd(id uint32) refStep {
	return refReply(id, true, refAnswer{msgSOK, false, nil})
}

// refShown is a refusal's reason as a *RefusedError holds it: each
// character that is not printable (unicode.IsPrint), and each byte that is
// not UTF-8, as '?'; at most 200 characters, then '…'.
func refShown(reason string) string {
	var b strings.Builder
	n := 0
	for _, r := range reason {
		if n == 200 {
			b.WriteRune('…')
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// refConversation judges the bytes as the replies steps expect, in turn,
// and returns the last step's result (the first that is not refOK) and the
// bytes after the replies read.
func refConversation(b []byte, steps ...refStep) (refResult, []byte) {
	var r refResult
	for _, step := range steps {
		var body []byte
		body, b, r = refSplit(b)
		if r.kind != refOK {
			return r, nil
		}
		if r = step(body); r.kind != refOK {
			return r, nil
		}
	}
	return r, b
}

// checkErr checks that err is the error refResult r calls for (stalled:
// the master stays silent after the bytes, so an end of the bytes is a
// wait for the context's end).
func checkErr(t *testing.T, what string, err error, r refResult, stalled bool) {
	t.Helper()
	var refused *RefusedError
	switch r.kind {
	case refOK:
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
	case refEOF:
		if stalled && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want the context's end (the master stalls)", what, err)
		}
		if !stalled && !errors.Is(err, ErrNoMaster) {
			t.Fatalf("%s: %v, want ErrNoMaster (the master closed the connection)", what, err)
		}
	case refProtocol:
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("%s: %v, want ErrProtocol", what, err)
		}
	case refRefused:
		if !errors.As(err, &refused) || refused.Denied != r.denied || refused.Reason != r.reason {
			t.Fatalf("%s: %v, want the master's refusal (denied %v) %q", what, err, r.denied, r.reason)
		}
	}
	if err != nil {
		checkMessage(t, err)
	}
}

// checkMessage checks that an error message is printable text of bounded
// length, whatever the master sent: the reason of a refusal is cut at 200
// characters, and no control character (C0, DEL or C1) gets through.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if !utf8.ValidString(msg) {
		t.Fatalf("error message is not UTF-8: %q", msg)
	}
	for _, r := range msg {
		if unicode.IsControl(r) {
			t.Fatalf("control character %U in the error message %q", r, msg)
		}
	}
	if n := utf8.RuneCountInString(msg); n > 1000 {
		t.Fatalf("error message of %d characters", n)
	}
}

// A hello (with OpenSSH's "info" extension), and replies, as a master
// frames them.
func fuzzHello() []byte { return newMsg(msgHello).u32(4).str("info").str("0").bytes() }
func fuzzAlive(id, pid uint32) []byte {
	return newMsg(msgSAlive).u32(id).u32(pid).bytes()
}
func fuzzOpened(id uint32) []byte { return newMsg(msgSSessionOpened).u32(id).u32(3).bytes() }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func FuzzMuxCodec(f *testing.F) {
	for _, seed := range [][]byte{
		fuzzHello(),
		newMsg(msgHello).u32(4).bytes(),
		cat(fuzzHello(), fuzzAlive(1, 4242)),
		cat(fuzzHello(), fuzzAlive(0, 4242), fuzzOpened(1)),
		newMsg(msgSFailure).u32(1).str("Session open refused by peer").bytes(),
		newMsg(msgSPermission).u32(1).str("Permission denied\x1b[31m").bytes(),
		newMsg(msgSRemotePort).u32(1).u32(40000).bytes(),
		newMsg(msgSOK).u32(1).bytes(),
		newMsg(msgSExitMessage).u32(1).u32(0).bytes(),
		{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1},
		{0, 0, 0, 3, 0, 0, 0},
		{0, 4, 0, 0, 0, 0, 0, 1},
	} {
		f.Add(seed, uint32(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, id uint32) {
		// The decoder, on the whole bytes and one byte at a time.
		var bodies [][]byte
		for pass, rd := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			rest := data
			for i := 0; ; i++ {
				m, err := readPacket(rd)
				body, next, r := refSplit(rest)
				if pass == 0 {
					// A length refused allocates nothing for it, and
					// no packet more than maxPacket.
					limit := uint64(maxPacket + 64<<10)
					if r.kind == refProtocol {
						limit = 4 << 10
					}
					if a := readPacketAlloc(rest, limit); a > limit {
						t.Fatalf("readPacket allocated %d bytes for the packet %.64x", a, rest)
					}
				}
				switch {
				case len(rest) == 0:
					if err != io.EOF {
						t.Fatalf("packet %d: %v at the end of the bytes, want io.EOF", i, err)
					}
				case r.kind == refEOF:
					if err != io.ErrUnexpectedEOF {
						t.Fatalf("packet %d: %v for a short packet, want io.ErrUnexpectedEOF", i, err)
					}
				case r.kind == refProtocol:
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("packet %d: %v for length %#x, want ErrProtocol", i, err, binary.BigEndian.Uint32(rest))
					}
				case err != nil:
					t.Fatalf("packet %d: %v, want the body %x", i, err, body)
				case !bytes.Equal(m.b, body):
					t.Fatalf("packet %d: body %x, want %x", i, m.b, body)
				}
				if err != nil {
					break
				}
				if pass == 0 && len(bodies) < 8 {
					bodies = append(bodies, body)
				}
				rest = next
			}
		}
		if len(data) >= 8 {
			bodies = append(bodies, data) // unframed: the parsers alone
		}
		// Each parser, for id and for the id the body claims.
		for _, body := range bodies {
			ids := []uint32{id}
			if len(body) >= 8 {
				ids = append(ids, binary.BigEndian.Uint32(body[4:]))
			}
			fresh := func() *msgReader { return &msgReader{b: bytes.Clone(body)} }
			err := checkHello(fresh())
			checkErr(t, "checkHello", err, refHello(body), false)
			for _, id := range ids {
				pid, err := parseAlive(fresh(), id)
				r := refAlive(id)(body)
				checkErr(t, "parseAlive", err, r, false)
				if err == nil && pid != int(r.value) {
					t.Fatalf("parseAlive: PID %d, want %d", pid, r.value)
				}
				err = parseSessionOpened(fresh(), id)
				checkErr(t, "parseSessionOpened", err, refOpened(id)(body), false)
				for _, fwd := range []struct {
					typ, listenPort uint32
					ref             refStep
				}{
					{msgCOpenFwd, 0, refOpenFwd(id, 0)},
					{msgCOpenFwd, 8022, refOpenFwd(id, 8022)},
					{msgCCloseFwd, 0, refCloseFwd(id)},
					{msgCCloseFwd, 8022, refCloseFwd(id)},
				} {
					port, err := parseFwdReply(fresh(), id, fwd.typ, fwd.listenPort)
					r = fwd.ref(body)
					what := fmt.Sprintf("parseFwdReply(%#x, port %d)", fwd.typ, fwd.listenPort)
					checkErr(t, what, err, r, false)
					if port != int(r.value) {
						t.Fatalf("%s: port %d (%v), want %d", what, port, err, r.value)
					}
				}
			}
		}
	})
}

// readPacketAlloc returns the bytes readPacket allocates to read the first
// packet of b: the least of up to three tries, until one is within limit,
// as other goroutines (the fuzzing engine's) allocate too.
func readPacketAlloc(b []byte, limit uint64) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		rd := bytes.NewReader(b)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		readPacket(rd)
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
		if least <= limit {
			break
		}
	}
	return least
}

// fuzzMaster answers every control connection with its script: it writes
// the script, then ends its side (when stalled, only once released), and
// reads what the client sends, closing the descriptors passed, until the
// client closes.
type fuzzMaster struct {
	path string
	ln   *net.UnixListener
	wg   sync.WaitGroup

	mu       sync.Mutex
	script   []byte
	released chan struct{} // closed: the master ends its side after the script
}

func startFuzzMaster(f *testing.F) *fuzzMaster {
	m := &fuzzMaster{path: socketPath(f)}
	var err error
	m.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: m.path, Net: "unix"})
	if err != nil {
		f.Fatal(err)
	}
	m.wg.Go(func() {
		for {
			c, err := m.ln.AcceptUnix()
			if err != nil {
				return
			}
			m.mu.Lock()
			script, released := m.script, m.released
			m.mu.Unlock()
			m.wg.Go(func() { m.serve(c, script, released) })
		}
	})
	f.Cleanup(func() {
		m.ln.Close()
		m.wg.Wait()
	})
	return m
}

func (m *fuzzMaster) serve(c *net.UnixConn, script []byte, released chan struct{}) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a client that never closes fails the test, not the process
	wrote := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Write(script)
		select {
		case <-released:
			c.CloseWrite()
		case <-closed:
		}
	}()
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(16*4))
	for {
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, msg := range msgs {
				fds, _ := syscall.ParseUnixRights(&msg)
				for _, fd := range fds {
					syscall.Close(fd)
				}
			}
		}
		if err != nil {
			break
		}
	}
	close(closed)
	c.Close() // wakes the writer, if the client did not read everything
	<-wrote
}

// set makes script the answer on the control connections from now on;
// stalled, the master stays silent after it until release.
func (m *fuzzMaster) set(script []byte, stalled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.script, m.released = script, make(chan struct{})
	if !stalled {
		close(m.released)
	}
}

// release ends the stall: the master ends its side after the script, on
// its connections and the next ones.
func (m *fuzzMaster) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.released:
	default:
		close(m.released)
	}
}

// openFds counts this process's open descriptors.
func openFds() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// fuzzShortWait shortens exitWait, the wait for the exit of a master
// that does not answer (a fuzzed PID may be a live process). It is set
// once and not put back, so that no write of it can race with a reader
// left from an earlier test; tests run before fuzz targets, even with
// -count, so only fuzz targets see it.
var fuzzShortWait sync.Once

var fuzzOps = []string{"Dial", "OpenStdioFwd", "HandOver", "OpenRemoteFwd", "CloseRemoteFwd", "OpenRemoteFwdFixed"}

func FuzzMasterReplies(f *testing.F) {
	hello := fuzzHello()
	seeds := []struct {
		op     byte
		script []byte
	}{
		{0, cat(hello, fuzzAlive(1, 4242))},
		{0, cat(newMsg(msgHello).u32(4).bytes(), fuzzAlive(1, 1))},
		{0, cat(hello, newMsg(msgSFailure).u32(1).str("no\x1b[31m way").bytes())},
		{0, cat(hello, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})},
		{0, cat(hello, fuzzAlive(1, 4242)[:9])},
		{0x10, cat(hello, fuzzAlive(1, 4242)[:9])}, // stalled mid-packet
		{1, cat(hello, fuzzOpened(1), fuzzAlive(2, 4242))},
		{1, cat(hello, fuzzOpened(1))},
		{1, cat(hello, newMsg(msgSFailure).u32(1).str("Session open refused by peer").bytes())},
		{1, cat(hello, newMsg(msgSPermission).u32(1).str("Permission denied").bytes())},
		{1, cat(hello, newMsg(msgSExitMessage).u32(1).u32(0).bytes())},
		{0x11, cat(hello, fuzzOpened(1))},
		{2, cat(hello, fuzzAlive(0, 4242), fuzzOpened(1))},
		{2, cat(hello, fuzzAlive(0, 4242), newMsg(msgSFailure).u32(1).str("Session open refused by peer").bytes())},
		{0x12, cat(hello, fuzzAlive(0, 4242), fuzzOpened(1))},
		{3, cat(hello, newMsg(msgSRemotePort).u32(1).u32(40000).bytes())},
		{3, cat(hello, newMsg(msgSOK).u32(1).bytes())},
		{3, cat(hello, newMsg(msgSRemotePort).u32(1).u32(70000).bytes())},
		{4, cat(hello, newMsg(msgSOK).u32(1).bytes())},
		{4, cat(hello, newMsg(msgSFailure).u32(1).str("port not found").bytes())},
		{0, nil},
	}
	for _, s := range seeds {
		f.Add(s.op, s.script)
	}

	fuzzShortWait.Do(func() { exitWait = 10 * time.Millisecond })
	m := startFuzzMaster(f)
	client := &Client{path: m.path, addr: m.path}

	f.Fuzz(func(t *testing.T, op byte, script []byte) {
		if len(script) > 64<<10 {
			t.Skip()
		}
		name := fuzzOps[int(op&0x0f)%len(fuzzOps)]
		stalled := op&0x10 != 0
		baseGoroutines, baseFds := runtime.NumGoroutine(), openFds()
		m.set(script, stalled)

		timeout := 10 * time.Second
		if stalled {
			timeout = 50 * time.Millisecond // what ends the wait for a silent master
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		bound := 3 * time.Second
		within := func(what string) {
			t.Helper()
			if d := time.Since(start); d > bound {
				t.Fatalf("%s took %v (a master that closed, or a context of %v)", what, d, timeout)
			}
			// From now on the master ends its side after the
			// script.
			m.release()
		}

		switch name {
		case "Dial":
			c, err := Dial(ctx, m.path)
			within(name)
			r, _ := refConversation(script, refHello, refAlive(1))
			checkErr(t, name, err, r, stalled)
			if err == nil && c.PID() != int(r.value) {
				t.Fatalf("PID %d, want %d", c.PID(), r.value)
			}

		case "OpenStdioFwd":
			conn, err := client.OpenStdioFwd(ctx, "db.internal", 5432)
			within(name)
			r, rest := refConversation(script, refHello, refOpened(1))
			checkErr(t, name, err, r, stalled)
			if err != nil {
				break
			}
			// The master closed the forward's descriptors: Read finds
			// EOF, and asks the master on the forward's control
			// connection (request 2), the bytes after the reply,
			// then on a new one (request 1 after the hello), whether
			// it is still alive. With the Client's PID unknown, no
			// answer there means a lost master. (A stalled master
			// was released: it ends its side after the script.)
			start = time.Now()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, rerr := conn.Read(make([]byte, 16))
			within("Read of the forward's EOF")
			alive, _ := refConversation(rest, refAlive(2))
			again, _ := refConversation(script, refHello, refAlive(1))
			switch {
			case n != 0:
				t.Fatalf("Read %d bytes from a forward the master sent nothing to", n)
			case alive.kind == refOK || again.kind == refOK:
				if rerr != io.EOF {
					t.Fatalf("Read: %v, want io.EOF (the master answers it is alive)", rerr)
				}
			case !errors.Is(rerr, ErrMasterLost):
				t.Fatalf("Read: %v, want ErrMasterLost (no alive reply: %v; on a new connection: %v)", rerr, alive.kind, again.kind)
			}
			if err := conn.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

		case "HandOver":
			ours, theirs := fuzzSocketpair(t)
			fw, err := client.HandOver(ctx, "db.internal", 5432, ours)
			within(name)
			r, _ := refConversation(script, refHello, refAlive(0), refOpened(1))
			checkErr(t, name, err, r, stalled)
			if err == nil {
				if alive, _ := refConversation(script, refHello, refAlive(0)); fw.pid != int(alive.value) {
					t.Fatalf("PID %d, want %d", fw.pid, alive.value)
				}
				start = time.Now()
				if stalled {
					// Close ends the forward, and Wait says so.
					fw.Close()
					if err := fw.Wait(); !errors.Is(err, net.ErrClosed) {
						t.Fatalf("Wait after Close: %v", err)
					}
				} else if err := fw.Wait(); err != nil && !errors.Is(err, ErrMasterLost) {
					// The alive check after the end finds the
					// master alive, or the PID says whether it
					// lives.
					t.Fatalf("Wait: %v", err)
				}
				within("the end of the forward")
				fw.Close()
			}
			syscall.Close(ours)
			syscall.Close(theirs)

		case "OpenRemoteFwd", "OpenRemoteFwdFixed":
			listenPort := 0
			if name == "OpenRemoteFwdFixed" {
				listenPort = 8022
			}
			port, err := client.OpenRemoteFwd(ctx, "", listenPort, "localhost", 8080)
			within(name)
			r, _ := refConversation(script, refHello, refOpenFwd(1, uint32(listenPort)))
			checkErr(t, name, err, r, stalled)
			// No port with an error: never one the master named
			// for a request it did not fit.
			if port != int(r.value) {
				t.Fatalf("port %d (%v), want %d", port, err, r.value)
			}

		case "CloseRemoteFwd":
			err := client.CloseRemoteFwd(ctx, "", 0, "localhost", 8080)
			within(name)
			r, _ := refConversation(script, refHello, refCloseFwd(1))
			checkErr(t, name, err, r, stalled)
		}

		// Nothing left behind: the fake master's handlers end when the
		// client has closed its control connections, and a Conn's
		// lingering goroutine when the master ended its side.
		for deadline := time.Now().Add(3 * time.Second); runtime.NumGoroutine() > baseGoroutines || openFds() > baseFds; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines (was %d), %d descriptors (was %d) left after %s:\n%s",
					runtime.NumGoroutine(), baseGoroutines, openFds(), baseFds, name, buf[:runtime.Stack(buf, true)])
			}
		}
	})
}

func fuzzSocketpair(t *testing.T) (int, int) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds[0], fds[1]
}
