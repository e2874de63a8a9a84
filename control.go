package sshdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sshdial/sshdial/internal/sshmux"
	"golang.org/x/crypto/ssh"
)

// ControlPolicy says what a Dialer with a control path does when no
// ControlMaster answers there.
type ControlPolicy int

const (
	// ControlFallback uses the master while one answers, and otherwise the
	// Dialer's own SSH connection, as ssh does with ControlMaster no or
	// auto. A master that dies makes the next dial fall back (logged), and
	// a master that appears later is used again.
	ControlFallback ControlPolicy = iota
	// ControlRequired uses the master only: dials fail, with an error
	// matching ErrNoControlMaster, when none answers, and so does Connect.
	// The Dialer then logs in by itself only for Listen.
	ControlRequired
)

// WithControlPath makes the Dialer open its TCP and Unix socket
// connections through a running OpenSSH ControlMaster (`ssh -M`, or
// ControlMaster auto in ssh_config) that listens on the control socket at
// path, the way `ssh -S path -W host:port` does: no new login, and the
// encryption is done by the master's OpenSSH. It is
// WithControl(path, ControlFallback).
//
// path is used as given: no ~ or % tokens are expanded. An empty path, or
// "none", turns connection sharing off, as ControlPath none does.
//
// Without WithControlPath or WithControl, Connect takes the ControlPath
// and ControlMaster of the destination's ssh_config (tokens expanded as
// ssh expands them): with ControlMaster no (the default), auto or autoask
// it dials through the master that answers there, and otherwise through
// its own SSH connection (ControlFallback), logging which; with
// ControlMaster yes or ask it uses its own SSH connection, as ssh does
// (ssh then becomes the master; sshdial never does). The options win over
// the config, "none" included; they apply to the destination, never to
// jump hosts.
func WithControlPath(path string) Option { return WithControl(path, ControlFallback) }

// WithControl makes the Dialer dial through the ControlMaster at path,
// with policy saying what to do when none answers; see WithControlPath.
//
// Conns dialed through a master are *Conn values like the others:
// deadlines, CloseWrite (the target reads EOF), Close, and a master that
// dies reads as an error matching ErrSSHConnectionLost, never as a clean EOF
// (a master told `ssh -O stop` finishes its forwards, but when it exits
// right after the last one ends, as it does, that end cannot be told from
// a death and reads as lost too).
// Two things differ, both OpenSSH's behaviour: once the target has sent EOF
// the master ends the forward, so writes after a Read returned io.EOF fail
// (with a plain TCP connection or an own SSH channel they may go on); and
// the SSH server is told the master's originator, not WithOriginator's.
// LocalAddr returns the originator given by WithOriginator, else the
// control path as a *net.UnixAddr.
//
// A master that accepts control connections but does not answer (a
// stopped or hung ssh) holds a dial at most 5 seconds; it is then left
// alone for 30 seconds, during which dials fall back at once (or fail,
// under ControlRequired), and logged.
//
// Listen does not go through a master: a remote forward made through one
// belongs to the master, not to this process (it outlives it unless
// cancelled), carries no address of the connecting peer, and is known to
// the master only by its specification. Listen uses the Dialer's own SSH
// connection, under ControlRequired too.
//
// Connection sharing needs Unix domain sockets; elsewhere (Windows) the
// option is ignored with a log event and the Dialer uses its own SSH
// connection, or fails its dials under ControlRequired.
func WithControl(path string, policy ControlPolicy) Option {
	return option(func(d *Dialer) {
		if policy != ControlFallback && policy != ControlRequired {
			d.optionErr = fmt.Errorf("sshdial: WithControl: unknown policy %d", policy)
			return
		}
		if path == "" || strings.EqualFold(path, "none") {
			path = "" // off, and set: the config's ControlPath is not used
		}
		d.control = &controlState{path: path, policy: policy, conns: map[*Conn]struct{}{}, handed: map[*handedConn]struct{}{}}
	})
}

// controlFromConfig applies ssh_config's ControlPath (already expanded: ~
// and % tokens; "" for none) and ControlMaster to d, for Connect's
// destination, unless WithControlPath or WithControl was given: the option
// wins, "none" included.
//
// It follows what ssh does before it connects (mux.c, muxclient): with
// ControlMaster no (the default), auto or autoask, ssh uses the master
// that answers at ControlPath and otherwise connects by itself; so does
// the Dialer (ControlFallback), which never becomes a master itself. With
// ControlMaster yes or ask, ssh does not look for a master at all: it
// connects by itself to become the master (and, when a master already
// listens there, goes on without sharing). sshdial never becomes a master,
// so with yes or ask the Dialer uses its own SSH connection and ignores
// the ControlPath, and logs that once.
func (d *Dialer) controlFromConfig(controlPath, controlMaster string) {
	if d.control != nil || controlPath == "" || strings.EqualFold(controlPath, "none") {
		return
	}
	switch controlMaster {
	case "yes", "ask":
		d.log().Info("sshdial: ControlPath not used: with ControlMaster "+controlMaster+" ssh uses no existing master (it becomes one), and sshdial never becomes a master; ControlMaster auto shares a running master",
			"control_path", controlPath)
		return
	}
	WithControlPath(controlPath).apply(d)
}

// masterProbeTimeout bounds the look for a master (hello and alive check).
var masterProbeTimeout = 5 * time.Second

// masterSilentPause is how long a master that accepted and did not answer
// (ErrMasterSilent) is left alone: dials fall back, or fail under
// ControlRequired, at once meanwhile, instead of waiting for it each.
var masterSilentPause = 30 * time.Second

// controlState is a Dialer's connection sharing: the master last found,
// and the Conns dialed through it.
type controlState struct {
	path   string // "": sharing turned off by WithControlPath("none")
	policy ControlPolicy

	mu          sync.Mutex
	client      *sshmux.Client           // the master that answered last; nil when none
	silentUntil time.Time                // a master did not answer: not asked again before
	usedMaster  bool                     // the last dial went through a master, for logging changes
	loggedOther bool                     // the "unsupported here" event was logged
	conns       map[*Conn]struct{}       // open Conns through a master
	handed      map[*handedConn]struct{} // connections handed over to a master, until Wait ends
	closed      bool
}

// findMaster is Connect's look for a master on d's control path: found
// when one answers (Connect then leaves its own SSH connection until a
// dial needs it), an error wrapping ErrNoControlMaster (with d closed)
// when none does and d may not log in by itself (ControlRequired).
func (d *Dialer) findMaster(ctx context.Context) (found bool, err error) {
	cs := d.control
	if cs == nil || cs.path == "" {
		return false, nil
	}
	_, err = cs.master(ctx, d)
	switch {
	case err == nil:
		return true, nil
	case cs.policy == ControlRequired:
		d.Close()
		return false, fmt.Errorf("sshdial: Connect: %w: %w", ErrNoControlMaster, err)
	case errors.Is(err, sshmux.ErrUnsupported):
		return false, nil // logged by noMaster
	}
	d.log().Info("sshdial: no ControlMaster answers: connecting by itself", "control_path", cs.path, "err", err)
	return false, nil
}

// master returns the master to dial through, finding it first if needed.
func (cs *controlState) master(ctx context.Context, d *Dialer) (*sshmux.Client, error) {
	cs.mu.Lock()
	client, silentUntil := cs.client, cs.silentUntil
	cs.mu.Unlock()
	if client != nil {
		return client, nil
	}
	if time.Now().Before(silentUntil) {
		return nil, fmt.Errorf("%w: %s: not asked again until %s", sshmux.ErrMasterSilent, cs.path, silentUntil.Format(time.TimeOnly))
	}
	// A master that accepts and never answers (stopped) must not hold
	// every dial: the look is bounded, as ssh bounds its hello, and
	// remembered for masterSilentPause.
	pctx, cancel := context.WithTimeout(ctx, masterProbeTimeout)
	client, err := sshmux.Dial(pctx, cs.path)
	if err != nil && pctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf("%w within %v: %s", sshmux.ErrMasterSilent, masterProbeTimeout, cs.path)
	}
	cancel()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if err != nil {
		cs.noMaster(d, err)
		return nil, err
	}
	cs.client = client
	if !cs.usedMaster {
		cs.usedMaster = true
		d.log().Info("sshdial: dialing through the ControlMaster", "control_path", cs.path, "master_pid", client.PID())
	}
	return client, nil
}

// lost forgets client, found gone by a Conn or a handed-over forward,
// unless another master was found since: Stats no longer names it, and the
// next dial looks again.
func (cs *controlState) lost(d *Dialer, client *sshmux.Client) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if client != nil && cs.client == client {
		cs.noMaster(d, sshmux.ErrMasterLost)
	}
}

// noMaster forgets the master and logs the change; cs.mu is held. A
// master that did not answer (ErrMasterSilent) is not asked again for
// masterSilentPause.
func (cs *controlState) noMaster(d *Dialer, err error) {
	cs.client = nil
	if errors.Is(err, sshmux.ErrMasterSilent) && !time.Now().Before(cs.silentUntil) {
		cs.silentUntil = time.Now().Add(masterSilentPause)
		cs.usedMaster = false
		msg := "sshdial: the ControlMaster does not answer (stopped or hung): asked again in " + masterSilentPause.String()
		if cs.policy == ControlFallback {
			msg += "; dialing through an own SSH connection until then"
		}
		d.log().Warn(msg, "control_path", cs.path, "err", err)
		return
	}
	switch {
	case errors.Is(err, sshmux.ErrUnsupported):
		if !cs.loggedOther {
			cs.loggedOther = true
			d.log().Warn("sshdial: ControlPath ignored: connection sharing needs Unix domain sockets", "control_path", cs.path)
		}
	case cs.usedMaster:
		cs.usedMaster = false
		if cs.policy == ControlFallback {
			d.log().Warn("sshdial: the ControlMaster is gone: dialing through an own SSH connection", "control_path", cs.path, "err", err)
		} else {
			d.log().Warn("sshdial: the ControlMaster is gone", "control_path", cs.path, "err", err)
		}
	}
}

// dialViaMaster dials t through the master when d has a control path. It
// reports handled false when d has none, or when no master answers and d
// may fall back to its own SSH connection.
func (d *Dialer) dialViaMaster(ctx context.Context, network string, t *target) (c *Conn, err error, handled bool) {
	var mc *sshmux.Conn
	var used *sshmux.Client
	err, handled = d.viaMaster(ctx, network, t, func(client *sshmux.Client, host string, port int) (err error) {
		used = client
		if port < 0 {
			mc, err = client.OpenStdioFwdUnix(ctx, host)
		} else {
			mc, err = client.OpenStdioFwd(ctx, host, port)
		}
		return err
	})
	if err != nil || !handled {
		return nil, err, handled
	}
	return d.newMasterConn(d.control, mc, t, used)
}

// viaMaster runs open, which asks the master for a forward to host and
// port (-1: host is a Unix socket path), when d has a control path. It
// finds the master first, and looks again once when the master it had
// found is gone. It reports handled false when d has no control path, or
// when no master answers and d may fall back to its own SSH connection;
// otherwise err is the dial's error, nil when open succeeded.
func (d *Dialer) viaMaster(ctx context.Context, network string, t *target, open func(client *sshmux.Client, host string, port int) error) (err error, handled bool) {
	cs := d.control
	if cs == nil || cs.path == "" {
		return nil, false
	}
	fail := func(err error) (error, bool) {
		return &net.OpError{Op: "dial", Net: network, Addr: t.raddr, Err: err}, true
	}
	cs.mu.Lock()
	closed := cs.closed
	cs.mu.Unlock()
	if closed {
		return fail(ErrDialerClosed)
	}
	host, port, err := masterTarget(t)
	if err != nil {
		return fail(err)
	}
	for attempt := 0; attempt < 2; attempt++ {
		client, err := cs.master(ctx, d)
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			if cs.policy == ControlFallback {
				return nil, false
			}
			return fail(fmt.Errorf("%w: %w", ErrNoControlMaster, err))
		}
		err = open(client, host, port)
		var refused *sshmux.RefusedError
		switch {
		case err == nil:
			return nil, true
		case errors.As(err, &refused) && port < 0 && cs.policy == ControlFallback:
			// Masters before OpenSSH 9.4 turn a Unix socket into a
			// TCP connect to a host named by the path, which fails;
			// and the master does not say why. The Dialer's own SSH
			// connection tells.
			return nil, false
		case errors.As(err, &refused):
			// The master does not pass on the server's reason.
			msg := "through the ControlMaster: " + refused.Reason
			if port < 0 {
				msg += " (Unix sockets through a ControlMaster need OpenSSH 9.4 or later on its side)"
			}
			return fail(&OpenError{Reason: ssh.ConnectionFailed, Message: msg})
		case ctx.Err() != nil:
			return fail(ctx.Err())
		case errors.Is(err, sshmux.ErrNoMaster):
			// It died since it was found: look again, once; or it
			// stopped answering: left alone for a while.
			cs.mu.Lock()
			if cs.client == client {
				cs.noMaster(d, err)
			}
			cs.mu.Unlock()
			if errors.Is(err, sshmux.ErrMasterSilent) {
				if cs.policy == ControlFallback {
					return nil, false
				}
				return fail(fmt.Errorf("%w: %w", ErrNoControlMaster, err))
			}
			continue
		}
		return fail(err)
	}
	if cs.policy == ControlFallback {
		return nil, false
	}
	return fail(ErrNoControlMaster)
}

// masterTarget returns what to ask the master for: host and port, or a
// socket path and port -1.
func masterTarget(t *target) (string, int, error) {
	if ua, ok := t.raddr.(*net.UnixAddr); ok {
		return ua.Name, -1, nil
	}
	host, portText, err := net.SplitHostPort(t.raddr.String())
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

// newMasterConn makes a *Conn of a forward of the master and tracks it,
// so that the Dialer's Close closes it.
func (d *Dialer) newMasterConn(cs *controlState, mc *sshmux.Conn, t *target, client *sshmux.Client) (*Conn, error, bool) {
	laddr := net.Addr(d.originator)
	if d.originator == nil {
		laddr = &net.UnixAddr{Name: cs.path, Net: "unix"}
	}
	c := newDirectConn(mc, cs.path, t.netName, laddr, t.raddr)
	c.stats = &d.stats
	c.direct.lost = func() { cs.lost(d, client) }
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: t.netName, Addr: t.raddr, Err: ErrDialerClosed}, true
	}
	cs.conns[c] = struct{}{}
	c.onClose = func(c *Conn) {
		cs.mu.Lock()
		delete(cs.conns, c)
		cs.mu.Unlock()
	}
	cs.mu.Unlock()
	return c, nil, true
}

// controlConns counts the open Conns through a master, for Stats.
func (d *Dialer) controlConns() int {
	cs := d.control
	if cs == nil {
		return 0
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// controlPathInUse returns the control path when the master last found
// there is the one dials go through, "" otherwise.
func (d *Dialer) controlPathInUse() string {
	cs := d.control
	if cs == nil {
		return ""
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.client == nil {
		return ""
	}
	return cs.path
}

// closeControl fails the Conns dialed through the master, for the
// Dialer's Close.
func (d *Dialer) closeControl() {
	cs := d.control
	if cs == nil {
		return
	}
	cs.mu.Lock()
	cs.closed = true
	conns := make([]*Conn, 0, len(cs.conns))
	for c := range cs.conns {
		conns = append(conns, c)
	}
	handed := make([]*handedConn, 0, len(cs.handed))
	for h := range cs.handed {
		handed = append(handed, h)
	}
	cs.mu.Unlock()
	for _, c := range conns {
		c.fail(ErrDialerClosed)
	}
	for _, h := range handed {
		h.fail(ErrDialerClosed)
	}
}
