package sshdial_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// kbdServer starts an sshtest server that takes no key and asks, by
// keyboard-interactive, the questions of rounds (one round per call of
// the x/crypto challenge), then accepts when check says the answers are
// right. HOME is a temporary one whose known_hosts has the server's key.
// It returns the destination, user@host:port.
func kbdServer(t *testing.T, rounds [][]string, echo [][]bool, check func(answers [][]string) bool) (*sshtest.Server, string) {
	t.Helper()
	h := newHome(t)
	srv := sshtest.NewUnstartedServer()
	srv.Config.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no keys here")
	}
	srv.Config.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		var got [][]string
		for i, qs := range rounds {
			ans, err := client("Login", fmt.Sprintf("round %d", i+1), qs, echo[i])
			if err != nil {
				return nil, err
			}
			got = append(got, ans)
		}
		if check(got) {
			return nil, nil
		}
		return nil, errors.New("wrong answers")
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h.write(t, "known_hosts", xknownhosts.Line([]string{xknownhosts.Normalize(srv.Addr())}, srv.HostKey())+"\n")
	return srv, "kbduser@" + srv.Addr()
}

// answers is a WithKeyboardInteractive callback that gives the next of a
// list of answers for each round, and records the challenges.
type answers struct {
	mu         sync.Mutex
	next       [][]string
	challenges []sshdial.Challenge
	err        error // returned instead, when set
}

func (a *answers) answer(ctx context.Context, c sshdial.Challenge) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.challenges = append(a.challenges, c)
	if a.err != nil {
		return nil, a.err
	}
	if len(a.next) == 0 {
		return nil, errors.New("test: no more answers")
	}
	ans := a.next[0]
	a.next = a.next[1:]
	return ans, nil
}

func (a *answers) calls() []sshdial.Challenge {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]sshdial.Challenge(nil), a.challenges...)
}

func oneCode(code string) func([][]string) bool {
	return func(got [][]string) bool { return len(got) == 1 && len(got[0]) == 1 && got[0][0] == code }
}

func kbdConnect(t *testing.T, dest string, opts ...sshdial.ConnectOption) (*sshdial.Dialer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := sshdial.Connect(ctx, dest, opts...)
	if err == nil {
		t.Cleanup(func() { d.Close() })
	}
	return d, err
}

// A one-time code: the question reaches the callback with the hop's name,
// the user and the echo flag, and its answer logs in.
func TestKeyboardInteractiveCode(t *testing.T) {
	srv, dest := kbdServer(t, [][]string{{"Verification code: "}}, [][]bool{{false}}, oneCode("246810"))
	a := &answers{next: [][]string{{"246810"}}}
	var logBuf lockedBuffer
	d, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer),
		sshdial.WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
	require.NoError(t, err)
	requireEchoThrough(t, d)
	calls := a.calls()
	require.Len(t, calls, 1)
	host, _, _ := strings.Cut(srv.Addr(), ":")
	require.Equal(t, sshdial.Challenge{Host: host, User: "kbduser", Name: "Login", Instruction: "round 1",
		Questions: []string{"Verification code: "}, Echo: []bool{false}}, calls[0])
	require.Contains(t, logBuf.String(), "auth=keyboard-interactive")
	require.NotContains(t, logBuf.String(), "246810")
}

// A wrong code is asked again, and the right one then logs in.
func TestKeyboardInteractiveWrongThenRight(t *testing.T) {
	_, dest := kbdServer(t, [][]string{{"Code: "}}, [][]bool{{false}}, oneCode("111"))
	a := &answers{next: [][]string{{"999"}, {"111"}}}
	_, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer))
	require.NoError(t, err)
	require.Len(t, a.calls(), 2)
}

// Three wrong codes (NumberOfPasswordPrompts' default) fail the login:
// ErrAuthFailed, saying what was tried without the codes.
func TestKeyboardInteractiveThreeWrong(t *testing.T) {
	_, dest := kbdServer(t, [][]string{{"Code: "}}, [][]bool{{false}}, oneCode("111"))
	a := &answers{next: [][]string{{"wrong-code-1"}, {"wrong-code-2"}, {"wrong-code-3"}, {"111"}}}
	_, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer))
	require.ErrorIs(t, err, sshdial.ErrAuthFailed)
	require.Len(t, a.calls(), 3, "asked three times, not a fourth")
	require.Contains(t, err.Error(), "keyboard-interactive: 1 answer sent")
	require.NotContains(t, err.Error(), "wrong-code")
}

// Several rounds in one login (a password, then a user-visible question
// and a code), each with its echo flags; all answers must be right.
func TestKeyboardInteractiveRounds(t *testing.T) {
	rounds := [][]string{{"Password: "}, {"Device: ", "Code: "}}
	echo := [][]bool{{false}, {true, false}}
	_, dest := kbdServer(t, rounds, echo, func(got [][]string) bool {
		return len(got) == 2 && got[0][0] == "pw" && got[1][0] == "phone" && got[1][1] == "42"
	})
	a := &answers{next: [][]string{{"pw"}, {"phone", "42"}}}
	_, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer))
	require.NoError(t, err)
	calls := a.calls()
	require.Len(t, calls, 2)
	require.Equal(t, rounds[1], calls[1].Questions)
	require.Equal(t, echo[1], calls[1].Echo)
	require.Equal(t, "round 2", calls[1].Instruction)
}

// A callback error ends the login with that error; no method is left.
func TestKeyboardInteractiveCallbackError(t *testing.T) {
	_, dest := kbdServer(t, [][]string{{"Code: "}}, [][]bool{{false}}, oneCode("1"))
	a := &answers{err: errors.New("nobody to ask")}
	_, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer))
	require.ErrorContains(t, err, "nobody to ask")
	require.Len(t, a.calls(), 1)
}

// A reconnect whose code the callback cannot give fails that dial with the
// callback's error, which is logged; it does not wait, and the next dial
// tries again and logs in.
func TestKeyboardInteractiveReconnect(t *testing.T) {
	srv, dest := kbdServer(t, [][]string{{"Code: "}}, [][]bool{{false}}, oneCode("777"))
	a := &answers{next: [][]string{{"777"}}}
	var logBuf lockedBuffer
	d, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer), sshdial.WithConnectTimeout(10*time.Second),
		sshdial.WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
	require.NoError(t, err)

	cbErr := errors.New("a one-time code is needed and nobody is there")
	a.mu.Lock()
	a.err = cbErr
	a.mu.Unlock()
	srv.CloseClientConnections()
	target := serve(t, "tcp", echo).Addr().String()
	// Until the loss is noticed, a dial may still go to the old connection.
	require.Eventually(t, func() bool { return d.Stats().SSHConnections == 0 }, 20*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, dialErr := d.DialContext(ctx, "tcp", target)
	require.ErrorIs(t, dialErr, cbErr, "WithKeyboardInteractive: the login ends with the callback's error")
	require.Contains(t, logBuf.String(), "a one-time code is needed")

	a.mu.Lock()
	a.err, a.next = nil, [][]string{{"777"}}
	a.mu.Unlock()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 30*time.Second, 50*time.Millisecond, "a later dial logs in again")
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Keyboard-interactive on a jump host (a bastion with codes) as well as on
// the destination: each round names the hop that asks.
func TestKeyboardInteractiveJumpHost(t *testing.T) {
	h := newHome(t)
	start := func(code string) *sshtest.Server {
		srv := sshtest.NewUnstartedServer()
		srv.Config.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("no keys here")
		}
		srv.Config.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := client("", "", []string{"Code: "}, []bool{false})
			if err == nil && len(ans) == 1 && ans[0] == code {
				return nil, nil
			}
			return nil, errors.New("wrong code")
		}
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	bastion, inner := start("bastion-code"), start("inner-code")
	var kh, config strings.Builder
	for name, srv := range map[string]*sshtest.Server{"bastion": bastion, "inner": inner} {
		kh.WriteString(xknownhosts.Line([]string{xknownhosts.Normalize(srv.Addr())}, srv.HostKey()) + "\n")
		fmt.Fprintf(&config, "Host %s\n  HostName 127.0.0.1\n  Port %s\n  User u-%s\n", name, portOf(srv.Addr()), name)
	}
	config.WriteString("Host inner\n  ProxyJump bastion\n")
	h.write(t, "known_hosts", kh.String())
	h.write(t, "config", config.String())

	var mu sync.Mutex
	var asked []string
	_, err := kbdConnect(t, "inner", sshdial.WithKeyboardInteractive(func(_ context.Context, c sshdial.Challenge) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, c.User+"@"+c.Host)
		return []string{c.Host + "-code"}, nil
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"u-bastion@bastion", "u-inner@inner"}, asked)
}

// NumberOfPasswordPrompts and PreferredAuthentications from the config
// reach the login: 1 prompt means one wrong code fails it, 0 means the
// code is never asked.
func TestKeyboardInteractiveConfigPrompts(t *testing.T) {
	_, dest := kbdServer(t, [][]string{{"Code: "}}, [][]bool{{false}}, oneCode("111"))
	for _, tc := range []struct {
		lines []string
		next  [][]string
		asked int
		ok    bool
	}{
		{[]string{"NumberOfPasswordPrompts 1"}, [][]string{{"999"}, {"111"}}, 1, false},
		{[]string{"NumberOfPasswordPrompts 0"}, [][]string{{"111"}}, 0, false},
		{[]string{"PreferredAuthentications publickey,password"}, [][]string{{"111"}}, 0, false},
		{[]string{"PreferredAuthentications keyboard-interactive", "NumberOfPasswordPrompts 2"}, [][]string{{"999"}, {"111"}}, 2, true},
	} {
		a := &answers{next: tc.next}
		_, err := kbdConnect(t, dest, sshdial.WithKeyboardInteractive(a.answer), sshdial.WithConfigLines(tc.lines...))
		if tc.ok {
			require.NoError(t, err, "%q", tc.lines)
		} else {
			require.ErrorIs(t, err, sshdial.ErrAuthFailed, "%q", tc.lines)
		}
		require.Len(t, a.calls(), tc.asked, "%q", tc.lines)
	}
}
