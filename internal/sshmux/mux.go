// Package sshmux is a client of OpenSSH's connection-sharing protocol
// (PROTOCOL.mux in OpenSSH's sources): it talks to a running ssh
// ControlMaster over its control socket (ControlPath) and asks it to open
// TCP connections through the SSH connection it already holds, as
// `ssh -S path -W host:port` does. No new SSH login is made; the data is
// encrypted by the master, OpenSSH's own C code.
//
// Only the parts of the protocol that a dialer needs are spoken: the hello
// exchange (version 4), MUX_C_ALIVE_CHECK, MUX_C_NEW_STDIO_FWD with its two
// descriptors passed by SCM_RIGHTS, and MUX_C_OPEN_FWD / MUX_C_CLOSE_FWD
// for remote forwards.
//
// Descriptor passing needs Unix domain sockets: on systems without them
// (Windows, Plan 9, wasm) Dial returns an error wrapping ErrUnsupported.
//
// What the master does with the facts of OpenSSH's mux.c that shape this
// package:
//   - It serves at most one stdio forward per control connection, and it
//     tears the forward down when that control connection closes: a Conn
//     keeps its own control connection open for its whole life.
//   - It sends the forward's data to the descriptor passed as "stdout" and
//     reads what to send from the one passed as "stdin". When the target
//     sends EOF it closes its "stdout" descriptor (close(2), not shutdown:
//     channels.c's chan_shutdown_write for a channel without a socket of
//     its own); were both descriptors the same socket, that close would
//     not show here while the other descriptor still holds the socket,
//     and the EOF would come only when the master ends the whole forward,
//     a round trip to the SSH server later. So a Conn passes one end of
//     each of two socketpairs. HandOver, which passes a socket the caller
//     accepted as both (so that the data never passes through this
//     process), takes that later EOF, and leaves the last descriptor to
//     the caller (see Forward).
//   - On the target's EOF the master also stops reading "stdin" and ends
//     the forward (channels.c, channel_input_ieof: force_drain, the same
//     for `ssh -W`): unlike a TCP connection, a forward through a master
//     cannot go on sending after the target's half-close. Our own
//     half-close (CloseWrite) works as with TCP: the target reads EOF, and
//     its answer still comes back.
//   - When the master dies, the kernel closes its descriptors, which reads
//     as EOF. A Conn asks the master whether it is still alive before it
//     reports EOF, so that a lost master reads as an error wrapping
//     ErrMasterLost, never as a clean EOF.
package sshmux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"syscall"
	"unicode"
)

// Message types, from OpenSSH's mux.c (PROTOCOL.mux section 11).
const (
	msgHello          = 0x00000001
	msgCAliveCheck    = 0x10000004
	msgCOpenFwd       = 0x10000006
	msgCCloseFwd      = 0x10000007
	msgCNewStdioFwd   = 0x10000008
	msgSOK            = 0x80000001
	msgSPermission    = 0x80000002
	msgSFailure       = 0x80000003
	msgSExitMessage   = 0x80000004
	msgSAlive         = 0x80000005
	msgSSessionOpened = 0x80000006
	msgSRemotePort    = 0x80000007

	fwdRemote = 2 // MUX_FWD_REMOTE

	// portStreamLocal is OpenSSH's PORT_STREAMLOCAL (-2 as a uint32): the
	// host field names a Unix socket path instead.
	portStreamLocal = 0xfffffffe

	protocolVersion = 4

	// maxPacket bounds what a reply may claim as its length; the master's
	// replies are a few dozen bytes.
	maxPacket = 256 << 10
)

// ErrNoMaster is wrapped by the errors of Dial and OpenStdioFwd when no
// master answers on the control path: no socket there, or a socket that
// nobody listens on (a master that died leaves it behind).
var ErrNoMaster = errors.New("sshmux: no ControlMaster answers on the control path")

// ErrMasterSilent is wrapped by the errors of requests whose control
// connection the master accepted but did not greet within HelloTimeout: a
// stopped or hung master. It wraps ErrNoMaster.
var ErrMasterSilent = fmt.Errorf("%w: the master accepted the connection but did not answer", ErrNoMaster)

// ErrMasterLost is wrapped by the errors of a Conn's Read and Write when the
// master died (or stopped answering) while the forward was open. It wraps
// syscall.ECONNRESET, like a TCP connection reset.
var ErrMasterLost = fmt.Errorf("sshmux: the ControlMaster connection was lost: %w", syscall.ECONNRESET)

// ErrPathTooLong is wrapped by the error of Dial when the control path does
// not fit in a Unix socket address (sun_path: 108 bytes on Linux, 104 on
// the BSDs and macOS, counting the terminating NUL). OpenSSH cannot listen
// on such a path either.
var ErrPathTooLong = errors.New("sshmux: control path too long for a Unix socket address")

// ErrUnsupported is wrapped by the error of Dial on systems where
// descriptors cannot be passed over Unix domain sockets.
var ErrUnsupported = errors.New("sshmux: connection sharing (ControlPath) needs Unix domain sockets, not available on this system")

// ErrProtocol is wrapped by errors about messages from the master that do
// not follow PROTOCOL.mux.
var ErrProtocol = errors.New("sshmux: protocol error")

// RefusedError is the error of a request that the master answered with
// MUX_S_FAILURE or MUX_S_PERMISSION_DENIED. For a stdio forward whose
// target refused the connection, or that the SSH server did not allow, the
// master says "Session open refused by peer" (it does not pass on the SSH
// server's reason).
type RefusedError struct {
	// Denied is true for MUX_S_PERMISSION_DENIED (the master's user said
	// no to a ControlMaster ask prompt), false for MUX_S_FAILURE.
	Denied bool
	// Reason is the master's text, made safe to print as the error
	// message is: every character that unicode.IsPrint refuses, and every
	// byte that is not UTF-8, is '?', and it is cut after 200 characters
	// (then ending in '…'). The master's own reasons are short ASCII
	// sentences, which stay as they are.
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Denied {
		return "sshmux: the ControlMaster denied the request: " + sanitize(e.Reason)
	}
	return "sshmux: the ControlMaster refused the request: " + sanitize(e.Reason)
}

// sanitize keeps text from the master printable and short in error
// messages and in RefusedError.Reason: what unicode.IsPrint refuses (and
// a byte that is not UTF-8) becomes '?': control characters,
// C1 (such as U+009B, CSI for terminals that take 8-bit controls) as well
// as C0 and DEL, and invisible format characters (U+202E, a bidi override
// that reorders the text after it; zero-width spaces).
func sanitize(s string) string {
	const limit = 200
	out := make([]rune, 0, min(len(s), limit+1))
	for _, r := range s {
		if len(out) >= limit {
			out = append(out, '…')
			break
		}
		if !unicode.IsPrint(r) || r == 0xfffd {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}

// msgBuilder builds one packet: the uint32 length is filled in by bytes.
type msgBuilder struct{ b []byte }

func newMsg(typ uint32) *msgBuilder {
	m := &msgBuilder{b: make([]byte, 4, 64)}
	return m.u32(typ)
}

func (m *msgBuilder) u32(v uint32) *msgBuilder {
	m.b = binary.BigEndian.AppendUint32(m.b, v)
	return m
}

func (m *msgBuilder) str(s string) *msgBuilder {
	m.u32(uint32(len(s)))
	m.b = append(m.b, s...)
	return m
}

// bytes returns the framed packet.
func (m *msgBuilder) bytes() []byte {
	binary.BigEndian.PutUint32(m.b, uint32(len(m.b)-4))
	return m.b
}

// msgReader parses one packet body; the first failure sticks.
type msgReader struct {
	b   []byte
	err error
}

func (r *msgReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.err = fmt.Errorf("%w: message truncated", ErrProtocol)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *msgReader) str() string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: string longer than its message", ErrProtocol)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// end returns the first failure, or an error when bytes are left after
// the fields read: the master sends none after a reply's fields.
func (r *msgReader) end() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) > 0 {
		return fmt.Errorf("%w: %d bytes after the reply's fields", ErrProtocol, len(r.b))
	}
	return nil
}

// readPacket reads one framed packet and returns its body.
func readPacket(rd io.Reader) (*msgReader, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 4 || n > maxPacket {
		return nil, fmt.Errorf("%w: packet length %d", ErrProtocol, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rd, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return &msgReader{b: body}, nil
}

// helloMsg is our hello: version 4, no extensions.
func helloMsg() []byte { return newMsg(msgHello).u32(protocolVersion).bytes() }

// checkHello parses the master's hello and checks its version; extensions
// are skipped.
func checkHello(m *msgReader) error {
	typ := m.u32()
	ver := m.u32()
	if m.err != nil {
		return m.err
	}
	if typ != msgHello {
		return fmt.Errorf("%w: expected hello, got message type %#x", ErrProtocol, typ)
	}
	if ver != protocolVersion {
		return fmt.Errorf("%w: the master speaks mux protocol version %d, not %d", ErrProtocol, ver, protocolVersion)
	}
	for len(m.b) > 0 && m.err == nil {
		m.str()
		m.str()
	}
	return m.err
}

// reply is a parsed status reply to request id.
type reply struct {
	typ  uint32
	body *msgReader // after type and request id
}

// parseReply reads the type and request id and checks the id. For a
// request that the master may refuse (refusable), MUX_S_FAILURE and
// MUX_S_PERMISSION_DENIED become a *RefusedError with the reason
// sanitized; for another request they are returned as any reply type, for
// the caller to refuse as unexpected.
func parseReply(m *msgReader, id uint32, refusable bool) (reply, error) {
	typ := m.u32()
	if typ == msgSExitMessage {
		// Sent on session channels, not ours; its id is a session id.
		return reply{}, fmt.Errorf("%w: unexpected exit message", ErrProtocol)
	}
	rid := m.u32()
	if m.err != nil {
		return reply{}, m.err
	}
	if rid != id {
		return reply{}, fmt.Errorf("%w: reply for request %d, expected %d", ErrProtocol, rid, id)
	}
	if refusable && (typ == msgSFailure || typ == msgSPermission) {
		reason := m.str()
		if err := m.end(); err != nil {
			return reply{}, err
		}
		return reply{}, &RefusedError{Denied: typ == msgSPermission, Reason: sanitize(reason)}
	}
	return reply{typ: typ, body: m}, nil
}

func aliveMsg(id uint32) []byte { return newMsg(msgCAliveCheck).u32(id).bytes() }

// parseAlive reads the reply to an alive check and returns the master's
// PID, which is in 1 to 2^31-1 (a pid_t that getpid(2) returns). The
// master answers an alive check only with MUX_S_ALIVE (mux.c,
// mux_master_process_alive_check): a refusal is a protocol error, not a
// *RefusedError, which would read as a refusal of the request that
// follows.
func parseAlive(m *msgReader, id uint32) (int, error) {
	r, err := parseReply(m, id, false)
	if err != nil {
		return 0, err
	}
	if r.typ != msgSAlive {
		return 0, fmt.Errorf("%w: expected alive reply, got message type %#x", ErrProtocol, r.typ)
	}
	pid := r.body.u32()
	if err := r.body.end(); err != nil {
		return 0, err
	}
	// PID 0 would make the checks for the master's exit ask about
	// this process group instead (kill(0, 0)).
	if pid == 0 || pid > math.MaxInt32 {
		return 0, fmt.Errorf("%w: alive reply with PID %d", ErrProtocol, pid)
	}
	return int(pid), nil
}

// stdioFwdMsg asks for a stdio forward to host:port. mux.c reads the port
// as a uint32 (PROTOCOL.mux says string; the code is what runs).
func stdioFwdMsg(id uint32, host string, port uint32) []byte {
	return newMsg(msgCNewStdioFwd).u32(id).str("").str(host).u32(port).bytes()
}

func parseSessionOpened(m *msgReader, id uint32) error {
	r, err := parseReply(m, id, true)
	if err != nil {
		return err
	}
	if r.typ != msgSSessionOpened {
		return fmt.Errorf("%w: expected session opened, got message type %#x", ErrProtocol, r.typ)
	}
	r.body.u32() // the master's channel id
	return r.body.end()
}

// fwdMsg is MUX_C_OPEN_FWD or MUX_C_CLOSE_FWD for a remote forward.
func fwdMsg(typ, id uint32, listenHost string, listenPort uint32, connectHost string, connectPort uint32) []byte {
	return newMsg(typ).u32(id).u32(fwdRemote).str(listenHost).u32(listenPort).str(connectHost).u32(connectPort).bytes()
}

// parseFwdReply reads the reply to request typ, MUX_C_OPEN_FWD or
// MUX_C_CLOSE_FWD, for a remote forward of listenPort, and returns the
// port the SSH server listens on for an opened forward (0 for a closed
// one, and with every error). The master (mux.c) answers as follows, and
// anything else is a protocol error:
//   - MUX_C_OPEN_FWD of a fixed port: MUX_S_OK (mux_confirm_remote_forward,
//     or the forward exists already); the port is listenPort.
//   - MUX_C_OPEN_FWD of port 0: MUX_S_REMOTE_PORT with the port the
//     server allocated, which must be in 1-65535.
//   - MUX_C_CLOSE_FWD: MUX_S_OK (mux_master_process_close_fwd).
//   - Either: MUX_S_FAILURE or MUX_S_PERMISSION_DENIED, a *RefusedError.
func parseFwdReply(m *msgReader, id, typ, listenPort uint32) (int, error) {
	r, err := parseReply(m, id, true)
	if err != nil {
		return 0, err
	}
	switch {
	case typ == msgCCloseFwd && r.typ == msgSOK:
		return 0, r.body.end()
	case typ == msgCCloseFwd:
		return 0, fmt.Errorf("%w: unexpected reply type %#x to the cancellation of a forward", ErrProtocol, r.typ)
	case r.typ == msgSOK && listenPort != 0:
		if err := r.body.end(); err != nil {
			return 0, err
		}
		return int(listenPort), nil
	case r.typ == msgSOK:
		return 0, fmt.Errorf("%w: MUX_S_OK without the allocated port to a forward of port 0", ErrProtocol)
	case r.typ == msgSRemotePort && listenPort != 0:
		return 0, fmt.Errorf("%w: MUX_S_REMOTE_PORT to a forward of fixed port %d", ErrProtocol, listenPort)
	case r.typ == msgSRemotePort:
		p := r.body.u32()
		if err := r.body.end(); err != nil {
			return 0, err
		}
		if p == 0 || p > 65535 {
			return 0, fmt.Errorf("%w: allocated port %d", ErrProtocol, p)
		}
		return int(p), nil
	}
	return 0, fmt.Errorf("%w: unexpected reply type %#x to a forward request", ErrProtocol, r.typ)
}

// checkTarget validates a forward's target: the master takes the host as a
// C string, so a NUL would cut it; the port must be a TCP port.
func checkTarget(host string, port int) error {
	if host == "" {
		return errors.New("sshmux: empty target host")
	}
	for i := 0; i < len(host); i++ {
		if host[i] == 0 {
			return errors.New("sshmux: target host contains a NUL byte")
		}
	}
	if len(host) > 1024 {
		return errors.New("sshmux: target host longer than 1024 bytes")
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("sshmux: target port %d out of range 1-65535", port)
	}
	return nil
}
