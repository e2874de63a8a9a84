package sshdial

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/net/proxy"
)

// FromURL returns a Dialer that connects through the SSH server named by u,
// reaching that server through forward (nil for proxy.Direct). Its
// signature is the one proxy.RegisterDialerType takes; registration is the
// caller's choice:
//
//	proxy.RegisterDialerType("ssh", sshdial.FromURL)
//	d, err := proxy.FromURL(u, proxy.Direct) // u: ssh://deploy@bastion.example.com:2222
//
// The URL has the form
//
//	ssh://user[:password]@host[:port][?known_hosts=PATH][&identity=PATH]...[&agent=no]
//
// and is taken as Connect takes the destination ssh://user@host:port (so
// ~/.ssh/config applies to the host), with the query as options: known_hosts
// files (comma-separated or repeated) instead of UserKnownHostsFile,
// identity files tried first, agent=no for no ssh-agent, and the password,
// if any, tried after the keys. The host key is always verified; there is
// no way to skip the check through a URL.
//
// The Dialer connects on its first dial, not here, and again after the
// connection is lost. FromURL returns the same Dialer for the same URL and
// forward while that Dialer is open, because golang.org/x/net/proxy calls
// it on every proxy.Dial when ALL_PROXY names an ssh:// URL: repeated calls
// share one SSH connection. Closing it closes it for every holder; the next
// FromURL then makes a new one.
//
// The proxy.Dialer it returns is a *Dialer.
func FromURL(u *url.URL, forward proxy.Dialer) (proxy.Dialer, error) {
	d, err := fromURL(u, forward)
	if err != nil {
		return nil, err // an untyped nil, not a nil *Dialer in the interface
	}
	return d, nil
}

// urlDialers are the open Dialers FromURL made, by URL; only those with the
// direct forward (nil or proxy.Direct) are shared.
var urlDialers struct {
	mu sync.Mutex
	m  map[string]*Dialer
}

// fromURL is FromURL returning the concrete type.
func fromURL(u *url.URL, forward proxy.Dialer) (*Dialer, error) {
	if u == nil {
		return nil, errors.New("sshdial: nil URL")
	}
	dest, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	shared := forward == nil || forward == proxy.Direct
	if !shared {
		opts = append(opts, withForward(forward))
	}
	key := u.String()
	if shared {
		urlDialers.mu.Lock()
		defer urlDialers.mu.Unlock()
		if d := urlDialers.m[key]; d != nil && !d.isClosed() {
			return d, nil
		}
	}
	d, err := newConnectDialer(context.Background(), dest, opts)
	if err != nil {
		return nil, fmt.Errorf("sshdial: URL ssh://%s: %w", u.Host, err)
	}
	if shared {
		if urlDialers.m == nil {
			urlDialers.m = make(map[string]*Dialer)
		}
		urlDialers.m[key] = d
	}
	return d, nil
}

// parseURL checks u and returns the destination and options it stands for.
// Its errors name the URL only by its host: the rest may hold a secret.
func parseURL(u *url.URL) (string, []ConnectOption, error) {
	fail := func(format string, args ...any) (string, []ConnectOption, error) {
		where := "URL"
		if u.Host != "" && u.Opaque == "" {
			where = "URL ssh://" + u.Host
		}
		return "", nil, fmt.Errorf("sshdial: %s: %s", where, fmt.Sprintf(format, args...))
	}
	if u.Scheme != "ssh" {
		return fail("scheme must be ssh")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return fail("only ssh://user@host:port with options in the query is understood")
	}
	host := u.Hostname()
	if host == "" {
		return fail("missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fail("port out of range (1-65535)")
		}
	}

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("malformed query")
	}
	for _, key := range slices.Sorted(maps.Keys(query)) { // the same error each time
		switch key {
		case "known_hosts", "identity", "agent":
		default:
			return fail("unknown option %q", key)
		}
	}
	var opts []ConnectOption
	if files := splitList(query["known_hosts"]); len(files) > 0 {
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return fail("known_hosts: %v", err)
			}
		}
		opts = append(opts, WithKnownHostsFile(files...))
	}
	identities := splitList(query["identity"])
	for _, f := range identities {
		pem, err := readKeyFile(f)
		if err != nil {
			return fail("identity: %v", err)
		}
		var missing *ssh.PassphraseMissingError
		if _, err := ssh.ParsePrivateKey(pem); err != nil && !errors.As(err, &missing) {
			return fail("identity %s: not a private key", f)
		}
	}
	if len(identities) > 0 {
		opts = append(opts, WithIdentityFile(identities...))
	}
	switch query.Get("agent") {
	case "", "yes":
	case "no":
		opts = append(opts, WithAgentSocket("none"))
	default:
		return fail("agent must be yes or no")
	}
	if password, ok := u.User.Password(); ok {
		opts = append(opts, WithPassword(func(context.Context) (string, error) { return password, nil }))
	}

	dest := "ssh://" + u.Host
	if name := u.User.Username(); name != "" {
		dest = "ssh://" + url.User(name).String() + "@" + u.Host
	}
	if strings.ContainsAny(dest, " \t\r\n") {
		return fail("malformed host")
	}
	return dest, opts, nil
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}
