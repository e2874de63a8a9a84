package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	osuser "os/user"
	"strings"
)

// Tokens are the values of ssh's % tokens for one connection, as ssh(1)
// computes them once the configuration is read.
type Tokens struct {
	C  string // hash of %l%h%p%r%j
	D  string // %d: the local user's home directory
	H  string // %h: the remote host name (after HostName and canonicalization)
	I  string // %i: the local user ID
	J  string // %j: the host of the last ProxyJump hop, "" for none
	K  string // %k: HostKeyAlias, else the host as typed
	L  string // %L: the local host name up to its first dot
	Ll string // %l: the local host name
	N  string // %n: the host as typed
	P  string // %p: the remote port
	R  string // %r: the remote user
	U  string // %u: the local user name
}

// ConnectionHash is %C: the SHA-1, in hex, of %l%h%p%r%j, as OpenSSH 9.6 and
// later compute it (earlier versions leave out %j, which is "" without
// ProxyJump).
func ConnectionHash(localHost, host, port, user, jump string) string {
	sum := sha1.Sum([]byte(localHost + host + port + user + jump))
	return hex.EncodeToString(sum[:])
}

// token returns the value of %c and whether c is a token.
func (t *Tokens) token(c byte) (string, bool) {
	switch c {
	case 'C':
		return t.C, true
	case 'd':
		return t.D, true
	case 'h':
		return t.H, true
	case 'i':
		return t.I, true
	case 'j':
		return t.J, true
	case 'k':
		return t.K, true
	case 'L':
		return t.L, true
	case 'l':
		return t.Ll, true
	case 'n':
		return t.N, true
	case 'p':
		return t.P, true
	case 'r':
		return t.R, true
	case 'u':
		return t.U, true
	case '%':
		return "%", true
	}
	return "", false
}

// Token sets: which tokens each keyword takes, as ssh(1) expands it.
const (
	// PathTokens are what IdentityFile, CertificateFile, ControlPath,
	// IdentityAgent and UserKnownHostsFile take (with ~ and ${VAR}).
	PathTokens = "CdhijkLlnpru"
	// ProxyCommandTokens are what ProxyCommand takes (no ~; the shell
	// expands the environment).
	ProxyCommandTokens = "hknpr"
	// HostNameTokens are what HostName takes.
	HostNameTokens = "h"
	// UserTokens are what User takes (OpenSSH 9.6 and later; earlier
	// versions take User literally).
	UserTokens = "dhijkLlnpu"
	// ExecTokens are what Match exec takes.
	ExecTokens = "CdhijkLlnpru"
)

// Expand expands value as ssh(1) expands a keyword's value: a leading ~
// (when tilde) from home, then the % tokens in allowed (%% always) and,
// when env, ${VAR} from the environment. An unknown token, a '%' at the
// end, an unset variable or an unknown ~user is an error, as in ssh.
func (t *Tokens) Expand(value, allowed string, tilde, env bool) (string, error) {
	if tilde && strings.HasPrefix(value, "~") {
		var err error
		if value, err = ExpandTilde(value, t.D); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		switch {
		case value[i] == '%':
			if i+1 >= len(value) {
				return "", errors.New("'%' at the end")
			}
			i++
			c := value[i]
			v, ok := t.token(c)
			if !ok || (c != '%' && strings.IndexByte(allowed, c) < 0) {
				return "", fmt.Errorf("unknown token %%%c", c)
			}
			b.WriteString(v)
		case env && value[i] == '$' && i+1 < len(value) && value[i+1] == '{':
			end := strings.IndexByte(value[i:], '}')
			if end < 0 {
				return "", errors.New("unterminated ${")
			}
			name := value[i+2 : i+end]
			v, ok := os.LookupEnv(name)
			if name == "" || !ok {
				return "", fmt.Errorf("environment variable %q is not set", name)
			}
			b.WriteString(v)
			i += end
		default:
			b.WriteByte(value[i])
		}
	}
	return b.String(), nil
}

// ExpandPath expands a file name as ssh(1) expands IdentityFile,
// CertificateFile, ControlPath, IdentityAgent and UserKnownHostsFile: ~,
// PathTokens and ${VAR}.
func (t *Tokens) ExpandPath(value string) (string, error) {
	return t.Expand(value, PathTokens, true, true)
}

// ExpandProxyCommand expands a ProxyCommand as ssh(1) does: %h %k %n %p %r
// and %%; the shell expands the rest.
func (t *Tokens) ExpandProxyCommand(value string) (string, error) {
	return t.Expand(value, ProxyCommandTokens, false, false)
}

// ExpandTilde expands ~, ~/path and ~user/path at the start of p as
// OpenSSH's tilde_expand_filename: home is the directory of ~ (ssh takes it
// from the passwd entry, not $HOME); the rest, without its leading '/'s,
// is appended after one '/' ("~//x" is home/x).
func ExpandTilde(p, home string) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	rest := p[1:]
	name, path, _ := strings.Cut(rest, "/")
	path = strings.TrimLeft(path, "/")
	dir := home
	if name != "" {
		u, err := osuser.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("no such user %q for ~", name)
		}
		dir = u.HomeDir
	}
	if dir == "" {
		return "", errors.New("home directory unknown for ~")
	}
	sep := "/"
	if strings.HasSuffix(dir, "/") {
		sep = ""
	}
	return dir + sep + path, nil
}
