package sshdial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"

	"github.com/sshdial/sshdial/internal/sshconfig"
)

// WithConfigLines gives Connect ssh_config lines ("Key value" or
// "Key=Value") read before the config files, as ssh -o: their values win
// over the files', and every keyword the config files take works (see
// ConfigKeys). They apply to the destination, not to its jump hosts (ssh
// passes no -o to those). Host, Match and Include are refused.
func WithConfigLines(lines ...string) ConnectOption {
	return connectOption(func(d *Dialer) {
		cs := d.connectOpts()
		cs.configLines = append(cs.configLines, lines...)
	})
}

// WithMatchExec says whether Connect may run the commands of "Match exec"
// lines of the config files, as ssh does (the default). With false no
// command runs, and a Match line with an exec criterion, negated or not,
// never matches: programs that must never run a command named in a config
// file get the settings the other blocks give.
func WithMatchExec(run bool) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().noMatchExec = !run })
}

// WithSystemConfigFile makes Connect read the system-wide ssh_config at path
// after the user's, instead of /etc/ssh/ssh_config; "" reads none.
// WithConfigFile replaces both.
func WithSystemConfigFile(path string) ConnectOption {
	return connectOption(func(d *Dialer) { d.connectOpts().systemConfig = &path })
}

// configSource returns where cs says the config comes from.
func (cs *connectSettings) configSource(ctx context.Context, home, localUser string) *configSource {
	return &configSource{
		ctx:        ctx,
		file:       cs.configFile,
		system:     cs.systemConfig,
		home:       home,
		localUser:  localUser,
		lines:      cs.configLines,
		noExec:     cs.noMatchExec,
		ignoreProx: cs.proxyCommand != nil,
		loginUser:  cs.user,
		loginPort:  cs.port,
	}
}

// ConfigKey is an ssh_config keyword that Connect (or the sshdial command)
// uses.
type ConfigKey struct {
	Name string // as ssh_config(5) spells it
	Doc  string // what sshdial does with it
}

// ConfigKeys returns the ssh_config keywords whose values sshdial uses;
// every other keyword ssh knows is accepted and ignored, and an unknown
// one is an error unless IgnoreUnknown names it, as in ssh.
func ConfigKeys() []ConfigKey {
	keys := make([]ConfigKey, len(sshconfig.Keys))
	for i, k := range sshconfig.Keys {
		keys[i] = ConfigKey{Name: k.Name, Doc: k.Doc}
	}
	return keys
}

// ResolvedConfig is the configuration Connect evaluates for a destination:
// the config files and WithConfigLines, as `ssh -G` prints it. Options
// given in code that replace config values (WithJump, WithProxyCommand,
// WithIdentityFile, WithKnownHostsFile, WithAgentSocket,
// WithStrictHostKeyChecking, WithConnectTimeout, WithKeepalive,
// WithAddressFamily) apply on top of it and are not in it.
type ResolvedConfig struct {
	destination string
	lines       []string // the WithConfigLines it was resolved with
	c           *sshconfig.Config
}

// WithResolvedConfig makes Connect use rc, which ResolveConfig returned for
// the same destination, instead of evaluating the config files again (and
// running their Match exec commands again). Jump hosts are still
// resolved from the files. A WithUser, WithPort or WithConfigLines given
// beside it must say what rc was resolved with (or be left out): one that
// rc does not reflect is an error rather than silently ignored.
func WithResolvedConfig(rc *ResolvedConfig) ConnectOption {
	return connectOption(func(d *Dialer) {
		if rc == nil || rc.c == nil {
			d.optionErr = errors.New("sshdial: WithResolvedConfig: nil config")
			return
		}
		d.connectOpts().resolved = rc
	})
}

// destinationHop returns the hop of rc for dest, when rc was resolved for
// dest.
func (cs *connectSettings) destinationHop(dest string) (*hop, bool, error) {
	rc := cs.resolved
	if rc == nil {
		return nil, false, nil
	}
	if rc.destination != dest {
		return nil, true, fmt.Errorf("sshdial: WithResolvedConfig: resolved for %q, not %q", rc.destination, dest)
	}
	// What rc does not reflect would be silently ignored.
	switch {
	case cs.user != "" && cs.user != rc.c.User:
		return nil, true, fmt.Errorf("sshdial: WithResolvedConfig: resolved for user %q, not WithUser's %q: give WithUser to ResolveConfig", rc.c.User, cs.user)
	case cs.port != 0 && cs.port != rc.c.Port:
		return nil, true, fmt.Errorf("sshdial: WithResolvedConfig: resolved for port %d, not WithPort's %d: give WithPort to ResolveConfig", rc.c.Port, cs.port)
	case len(cs.configLines) > 0 && !slices.Equal(cs.configLines, rc.lines):
		return nil, true, errors.New("sshdial: WithResolvedConfig: resolved without the lines of WithConfigLines given beside it: give them to ResolveConfig")
	}
	h, err := hopFromConfig(rc.c, cs.proxyCommand != nil)
	return h, true, err
}

// ResolveConfig evaluates the ssh_config for destination as Connect would
// with opts (WithConfigFile, WithSystemConfigFile, WithConfigLines,
// WithMatchExec, WithUser, WithPort), running Match exec commands unless
// WithMatchExec(false) is given. ctx bounds those commands and the host
// name lookups of CanonicalizeHostname: when it ends, they are killed and
// the error wraps ctx's. It connects to nothing.
func ResolveConfig(ctx context.Context, destination string, opts ...ConnectOption) (*ResolvedConfig, error) {
	if ctx == nil {
		return nil, errors.New("sshdial: ResolveConfig: nil context")
	}
	d := newDialer(opts)
	defer d.cancel()
	if d.optionErr != nil {
		return nil, d.optionErr
	}
	home, _ := os.UserHomeDir()
	localUser := ""
	if u, err := user.Current(); err == nil {
		localUser = u.Username
	}
	c, err := d.connectOpts().configSource(ctx, home, localUser).resolveConfig(destination, true)
	if err != nil {
		return nil, err
	}
	if _, err := hopFromConfig(c, false); err != nil {
		return nil, err
	}
	lines := slices.Clone(d.connectOpts().configLines)
	return &ResolvedConfig{destination: destination, lines: lines, c: c}, nil
}

// Get returns the values of key (lowercase, as ssh -G prints it: "port",
// "identityfile", ...), one per line ssh -G prints; nil for a key that is
// not set and has no default, or that sshdial does not use.
func (r *ResolvedConfig) Get(key string) []string {
	if r == nil || r.c == nil {
		return nil
	}
	return r.c.Get(key)
}

// IsSet reports whether a config line (or WithConfigLines) set key, rather
// than the default applying.
func (r *ResolvedConfig) IsSet(key string) bool {
	return r != nil && r.c != nil && r.c.IsSet(key)
}

// SkippedExec names ("file line N") the Match lines that did not match
// because WithMatchExec(false) kept their exec commands from running.
func (r *ResolvedConfig) SkippedExec() []string {
	if r == nil || r.c == nil {
		return nil
	}
	return append([]string(nil), r.c.SkippedExec...)
}

// WriteTo writes the configuration as `ssh -G` does for the keys sshdial
// uses: a lowercase key, a space and the value, one line per value.
func (r *ResolvedConfig) WriteTo(w io.Writer) (int64, error) {
	if r == nil || r.c == nil {
		return 0, errors.New("sshdial: ResolvedConfig: nil")
	}
	return r.c.WriteTo(w)
}
