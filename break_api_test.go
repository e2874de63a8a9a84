package sshdial_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestBreakBadOptionValues: every constructor given a bad value makes
// ResolveConfig, Connect and DialClient fail with an error naming it,
// never panic, whatever the order and whatever good option of the same
// kind follows it; New and NewPool report theirs on every dial.
func TestBreakBadOptionValues(t *testing.T) {
	newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Each bad option, and what its error names.
	bad := map[string]struct {
		opt  sshdial.ConnectOption
		want string
	}{
		"WithUser":                  {sshdial.WithUser(""), "WithUser"},
		"WithUser(NUL)":             {sshdial.WithUser("a\x00b"), "WithUser"},
		"WithUser(LF)":              {sshdial.WithUser("a\nb"), "WithUser"},
		"WithUser(DEL)":             {sshdial.WithUser("a\x7f"), "WithUser"},
		"WithUser(ESC)":             {sshdial.WithUser("\x1b[2J"), "WithUser"},
		"WithPort(0)":               {sshdial.WithPort(0), "WithPort(0)"},
		"WithPort(-1)":              {sshdial.WithPort(-1), "WithPort(-1)"},
		"WithPort(65536)":           {sshdial.WithPort(65536), "WithPort(65536)"},
		"WithPort(1<<40)":           {sshdial.WithPort(1 << 40), "WithPort"},
		"WithClientConfig":          {sshdial.WithClientConfig(nil), "WithClientConfig"},
		"WithResolvedConfig":        {sshdial.WithResolvedConfig(nil), "WithResolvedConfig"},
		"WithResolvedConfig(zero)":  {sshdial.WithResolvedConfig(&sshdial.ResolvedConfig{}), "WithResolvedConfig"},
		"WithAddressFamily":         {sshdial.WithAddressFamily("inet7"), "WithAddressFamily"},
		"WithStrictHostKeyChecking": {sshdial.WithStrictHostKeyChecking("ask"), "WithStrictHostKeyChecking"},
		"WithConnectTimeout":        {sshdial.WithConnectTimeout(-time.Second), "WithConnectTimeout"},
		"WithConnectTimeout(0)":     {sshdial.WithConnectTimeout(0), "WithConnectTimeout"},
		"WithPool":                  {sshdial.WithPool(0), "WithPool"},
		"WithOriginator":            {sshdial.WithOriginator(netip.AddrPort{}), "WithOriginator"},
		"WithControl":               {sshdial.WithControl("/x", sshdial.ControlPolicy(99)), "WithControl"},
		"nil option":                {nil, "nil option"},
	}
	good := sshdial.WithConfigFile("none")
	for name, b := range bad {
		opt := b.opt
		for order, opts := range map[string][]sshdial.ConnectOption{
			"alone":  {good, opt},
			"first":  {opt, good, sshdial.WithPort(22), sshdial.WithUser("u"), sshdial.WithConnectTimeout(time.Second)},
			"twice":  {good, opt, opt},
			"middle": {good, sshdial.WithPort(22), opt, sshdial.WithUser("u")},
		} {
			label := name + " " + order
			require.NotPanics(t, func() {
				_, err := sshdial.Connect(ctx, "127.0.0.1:1", opts...)
				require.ErrorContains(t, err, b.want, label)
				_, err = sshdial.DialClient(ctx, "127.0.0.1:1", opts...)
				require.ErrorContains(t, err, b.want, label)
			}, label)
		}
	}
	// ResolveConfig: the ones it takes, and a nil one.
	for _, name := range []string{"WithUser(NUL)", "WithPort(0)", "WithPort(65536)", "nil option"} {
		_, err := sshdial.ResolveConfig(ctx, "h", good, bad[name].opt, good)
		require.ErrorContains(t, err, bad[name].want, name)
	}
	// A user ssh refuses on its command line, given as WithUser, is
	// refused as the destination's user@ is (it reaches %r of
	// ProxyCommand and Match exec).
	for _, u := range []string{"-oProxyCommand=x", ";touch x", "a|b", "$(id)`", "a -b", `a\`} {
		_, err := sshdial.ResolveConfig(ctx, "h", good, sshdial.WithUser(u))
		require.Error(t, err, "WithUser(%q)", u)
		_, err = sshdial.ResolveConfig(ctx, u+"@h", good)
		require.Error(t, err, "%q@h", u)
	}

	// New and NewPool: a nil Option fails every dial, and so does a bad
	// one; neither panics.
	for _, d := range []*sshdial.Dialer{
		sshdial.New(nil, nil),
		sshdial.New(nil, sshdial.WithOriginator(netip.AddrPort{})),
		sshdial.NewPool(1, func(context.Context) (*ssh.Client, error) { return nil, fmt.Errorf("no") }, nil),
		sshdial.NewPool(0, nil),
		sshdial.NewPool(1, nil, sshdial.WithLogger(nil)),
	} {
		_, err := d.DialContext(ctx, "tcp", "127.0.0.1:1")
		require.Error(t, err)
		require.NoError(t, d.Close())
	}
}

// TestBreakOptionsGivenTwice: a value given twice is the last one's, as
// Go options go; lists add up.
func TestBreakOptionsGivenTwice(t *testing.T) {
	newHome(t)
	ctx := context.Background()
	rc, err := sshdial.ResolveConfig(ctx, "h", sshdial.WithConfigFile("none"),
		sshdial.WithUser("a"), sshdial.WithUser("b"), sshdial.WithPort(2), sshdial.WithPort(3),
		sshdial.WithConfigLines("IdentityFile /one"), sshdial.WithConfigLines("IdentityFile /two"))
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, rc.Get("user"))
	require.Equal(t, []string{"3"}, rc.Get("port"))
	require.Equal(t, []string{"/one", "/two"}, rc.Get("identityfile"))
}

// TestBreakResolvedConfigSilentOverride: WithResolvedConfig beside a
// WithUser, WithPort or WithConfigLines that the ResolvedConfig was not
// resolved with is an error, not silently dropped; given as they were
// given to ResolveConfig (as the command does), they are fine.
func TestBreakResolvedConfigSilentOverride(t *testing.T) {
	newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	none := sshdial.WithConfigFile("none")
	// The ProxyCommand fails at once, naming nothing: what matters is
	// whether Connect refused the options before.
	fail := sshdial.WithProxyCommand("exit 1")
	plain, err := sshdial.ResolveConfig(ctx, "h", none)
	require.NoError(t, err)
	for name, opt := range map[string]sshdial.ConnectOption{
		"WithUser":        sshdial.WithUser("other"),
		"WithPort":        sshdial.WithPort(2),
		"WithConfigLines": sshdial.WithConfigLines("Port 7"),
	} {
		_, err := sshdial.Connect(ctx, "h", none, sshdial.WithResolvedConfig(plain), opt, fail)
		require.ErrorContains(t, err, "WithResolvedConfig", name)
		require.ErrorContains(t, err, name, name)
		_, err = sshdial.DialClient(ctx, "h", none, sshdial.WithResolvedConfig(plain), opt, fail)
		require.ErrorContains(t, err, name, name)
	}
	same := []sshdial.ConnectOption{none, sshdial.WithUser("other"), sshdial.WithPort(2), sshdial.WithConfigLines("ServerAliveInterval 7")}
	rc, err := sshdial.ResolveConfig(ctx, "h", same...)
	require.NoError(t, err)
	_, err = sshdial.Connect(ctx, "h", append(same, sshdial.WithResolvedConfig(rc), fail)...)
	require.ErrorContains(t, err, "ProxyCommand", "the same options are no conflict")
	require.NotContains(t, err.Error(), "WithResolvedConfig")
	_, err = sshdial.Connect(ctx, "h", none, sshdial.WithResolvedConfig(rc), fail)
	require.ErrorContains(t, err, "ProxyCommand", "leaving them out is no conflict")
}

// TestBreakClientConfigConfigLines: WithConfigLines apply to the
// destination only, and WithClientConfig replaces its authentication and
// host key check: lines about those (and User, when the ClientConfig has
// one) would be silently ignored, with or without jump hosts, so they are
// errors. Other lines are fine.
func TestBreakClientConfigConfigLines(t *testing.T) {
	newHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc := &ssh.ClientConfig{User: "me", HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	base := []sshdial.ConnectOption{sshdial.WithConfigFile("none"), sshdial.WithClientConfig(cc)}
	for _, line := range []string{
		"IdentityFile /x", "identityfile=/x", "CertificateFile /x", "IdentitiesOnly yes", "IdentityAgent none",
		"PreferredAuthentications password", "NumberOfPasswordPrompts 1", "UserKnownHostsFile /x",
		"GlobalKnownHostsFile /x", "StrictHostKeyChecking yes", "HostKeyAlias other", "User other",
	} {
		for _, jumps := range [][]sshdial.ConnectOption{nil, {sshdial.WithJump("127.0.0.1:2")}} {
			opts := append(append(append([]sshdial.ConnectOption(nil), base...), jumps...), sshdial.WithConfigLines("ConnectTimeout 5", line))
			_, err := sshdial.Connect(ctx, "127.0.0.1:1", opts...)
			require.ErrorContains(t, err, "WithClientConfig", line)
			require.ErrorContains(t, err, "WithConfigLines", line)
			_, err = sshdial.DialClient(ctx, "127.0.0.1:1", opts...)
			require.ErrorContains(t, err, "WithClientConfig", line)
		}
	}
	// Lines the ClientConfig does not replace; User with a ClientConfig
	// that names none.
	_, err := sshdial.Connect(ctx, "127.0.0.1:1", append(base, sshdial.WithConfigLines("ConnectTimeout 5", "ServerAliveInterval 3", "Port 1"))...)
	require.ErrorContains(t, err, "127.0.0.1:1")
	require.NotContains(t, err.Error(), "WithClientConfig")
	_, err = sshdial.Connect(ctx, "127.0.0.1:1", sshdial.WithConfigFile("none"),
		sshdial.WithClientConfig(&ssh.ClientConfig{HostKeyCallback: ssh.InsecureIgnoreHostKey()}), sshdial.WithConfigLines("User other"))
	require.NotContains(t, err.Error(), "WithClientConfig")
	// A ClientConfig without a host key callback is x/crypto's clear error.
	_, err = sshdial.Connect(ctx, "127.0.0.1:1", sshdial.WithConfigFile("none"), sshdial.WithClientConfig(&ssh.ClientConfig{}))
	require.Error(t, err)
}
