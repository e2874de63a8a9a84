package sshdial

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/skeema/knownhosts"
	"github.com/sshdial/sshdial/internal/sshconfig"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

func filesList(files []string) string {
	if len(files) == 0 {
		return "none"
	}
	return strings.Join(files, ", ")
}

// openSSHHostKeyOrder is OpenSSH's default HostKeyAlgorithms order, used
// after the algorithms that known_hosts holds for a host, so that an unknown
// host presents (and accept-new records) the key OpenSSH would.
var openSSHHostKeyOrder = []string{
	ssh.CertAlgoED25519v01,
	ssh.CertAlgoECDSA256v01,
	ssh.CertAlgoECDSA384v01,
	ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoSKED25519v01,
	ssh.CertAlgoSKECDSA256v01,
	ssh.CertAlgoRSASHA512v01,
	ssh.CertAlgoRSASHA256v01,
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKED25519,
	ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoRSASHA512,
	ssh.KeyAlgoRSASHA256,
}

// hostKeyAlgorithms returns known (the algorithms known_hosts holds for the
// host) first, then the rest in OpenSSH's order, then any other that x/crypto
// supports; algorithms x/crypto does not support by default (SHA-1 RSA, DSA)
// are left out, as OpenSSH does.
func hostKeyAlgorithms(known []string) []string {
	supported := ssh.SupportedAlgorithms().HostKeys
	var algos []string
	add := func(a string) {
		if slices.Contains(supported, a) && !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	for _, a := range known {
		add(a)
	}
	for _, a := range openSSHHostKeyOrder {
		add(a)
	}
	for _, a := range supported {
		add(a)
	}
	return algos
}

// hostKeyMemory is what one Dialer remembers across its connections of the
// keys that accept-new or "no" accepted, per host as known_hosts names it:
// when the key could not be kept in a known_hosts file (UserKnownHostsFile
// /dev/null, a failed write), another key from the same host on a
// reconnect is still a changed key. Its zero value is ready; it is safe
// for concurrent use.
type hostKeyMemory struct {
	mu   sync.Mutex
	keys map[string][]byte // host -> the key's wire form
}

func (m *hostKeyMemory) get(host string) []byte {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys[host]
}

func (m *hostKeyMemory) set(host string, key ssh.PublicKey) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string][]byte{}
	}
	m.keys[host] = key.Marshal()
}

// hostKeyCheck returns the callback and the host key algorithms to offer for
// a server reached as hostname:port (hostname is HostKeyAlias when set),
// reading files (missing files are empty; other unreadable files are an
// error, since skipping one could turn a changed key into an unknown one).
//
// strict is "yes" or "ask" (refuse unknown keys), "accept-new" (append an
// unknown key to writeFile, creating it and its directory 0600/0700, and
// accept it) or "no" (as accept-new, with a warning logged, and an unknown
// key is accepted even when it cannot be recorded). Whatever the mode, a
// changed key, a @revoked one and a certificate that its trusted authority
// did not issue for the host are refused: OpenSSH with "no" goes on through
// a changed key with forwarding disabled, and forwarding is all sshdial
// does. OpenSSH's spellings "true", "false" and "off" are accepted too, and
// "" means "ask". Keys recorded are logged to log, as ssh's "Permanently
// added" warning.
//
// algorithms is the order x/crypto should negotiate: the key types
// known_hosts holds for this host first, so that a file holding only the
// ed25519 key works against a server that also has RSA, then the others in
// OpenSSH's order. Hashed names, [host]:port entries, wildcards,
// @cert-authority (host certificates) and @revoked lines work.
//
// The callback checks hostname:port whatever address x/crypto passes it (a
// jump host's target or an alias), and may be used for several handshakes.
// mem (nil: nothing) is what a Dialer remembers of the keys it accepted
// without a known_hosts line (see hostKeyMemory).
func hostKeyCheck(mem *hostKeyMemory, hostname string, port int, files []string, writeFile string, strict string, log *slog.Logger) (cb ssh.HostKeyCallback, algorithms []string, err error) {
	if hostname == "" {
		return nil, nil, errors.New("sshdial: host key check: empty host name")
	}
	if port <= 0 || port > 65535 {
		return nil, nil, fmt.Errorf("sshdial: host key check: port %d out of range", port)
	}
	mode, err := strictMode(strict)
	if err != nil {
		return nil, nil, err
	}
	if mode == "accept-new" && writeFile == "" {
		return nil, nil, errors.New("sshdial: StrictHostKeyChecking accept-new needs a known_hosts file to write")
	}
	if log == nil {
		log = discardLogger
	}
	// ssh(1) looks host names up in lowercase, and matches known_hosts
	// patterns without regard to case (see lowerHostPatterns): in ASCII
	// only, as tolower(3) in the C locale.
	hostname = sshconfig.LowerASCII(hostname)
	addr := net.JoinHostPort(hostname, strconv.Itoa(port))
	if h, _, err := net.SplitHostPort(addr); err != nil || h != hostname {
		// x/crypto would look "[x]" up as x, and "a]b" not at all. With
		// this, c.host below is the name ssh looks up, which openSSHView
		// relies on.
		return nil, nil, fmt.Errorf("sshdial: host key check: host name %q cannot be looked up in known_hosts", hostname)
	}
	c := &hostKeyChecker{
		hostname:  hostname,
		port:      port,
		addr:      addr,
		files:     slices.Clone(files),
		writeFile: writeFile,
		strict:    mode,
		log:       log,
		mem:       mem,
	}
	c.host = knownhosts.Normalize(c.addr)
	if err := c.load(); err != nil {
		return nil, nil, err
	}
	return c.check, hostKeyAlgorithms(c.db.HostKeyAlgorithms(c.addr)), nil
}

// strictMode maps a StrictHostKeyChecking value to "yes", "accept-new" or
// "no" ("ask" behaves as "yes": there is nobody to ask).
func strictMode(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "ask", "yes", "true":
		return "yes", nil
	case "accept-new":
		return "accept-new", nil
	case "no", "false", "off":
		return "no", nil
	}
	return "", fmt.Errorf("sshdial: StrictHostKeyChecking %q: want yes, ask, accept-new or no", s)
}

// hostKeyChecker is the state behind a callback returned by hostKeyCheck.
type hostKeyChecker struct {
	hostname  string
	port      int
	addr      string // hostname:port, as the known_hosts lookups take it
	host      string // as known_hosts names it
	files     []string
	writeFile string
	strict    string // "yes", "accept-new" or "no"
	log       *slog.Logger
	mem       *hostKeyMemory // nil: none

	mu sync.Mutex
	db *knownhosts.HostKeyDB
	// names maps the files db was read from to the known_hosts files they
	// stand for (see load), for the file names in errors.
	names map[string]string
	// certLines holds "file:line" of the @cert-authority lines, which are
	// not host keys when a plain key mismatches.
	certLines map[string]bool
	// accepted holds the keys recorded by accept-new through this checker.
	accepted [][]byte
}

// load reads the known_hosts files; a missing file is an empty one.
//
// The known_hosts parser matches host patterns case-sensitively, where
// ssh(1) ignores case, and reads some lines otherwise than ssh does (see
// openSSHView): a file whose patterns hold capitals, or with such lines,
// is read through a copy, lowercased and with those lines as ssh reads
// them for the host, made in a private temporary directory and removed
// once read, so that "[LOCALHOST]:2222 <key>" is the key of
// [localhost]:2222 (a changed key, not an unknown one that accept-new
// would record).
func (c *hostKeyChecker) load() error {
	var existing []string
	names := map[string]string{}
	certLines := map[string]bool{}
	var tmpDir string
	defer func() {
		if tmpDir != "" {
			os.RemoveAll(tmpDir)
		}
	}()
	for _, f := range c.files {
		data, err := readKnownHostsFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sshdial: reading known_hosts: %w", err)
		}
		for n, line := range bytes.Split(data, []byte("\n")) {
			if _, ok := xcryptoCertAuthority(line); ok {
				certLines[f+":"+strconv.Itoa(n+1)] = true
			}
		}
		read := f
		lower, changed := lowerHostPatterns(data)
		if seen, differs := openSSHView(lower, c.host, c.port); differs {
			lower, changed = seen, true
		}
		if changed {
			// In memory where the system allows it (Linux), so that no
			// temporary directory is needed: a container image may have
			// no /tmp, or a read-only one.
			if path, release, err := memoryFile(lower); err == nil {
				defer release()
				existing = append(existing, path)
				names[path] = f
				continue
			}
			if tmpDir == "" {
				if tmpDir, err = os.MkdirTemp("", "sshdial-known-hosts-"); err != nil {
					return fmt.Errorf("sshdial: reading known_hosts: %w", err)
				}
			}
			read = filepath.Join(tmpDir, strconv.Itoa(len(existing)))
			if err := os.WriteFile(read, lower, 0o600); err != nil {
				return fmt.Errorf("sshdial: reading known_hosts: %w", err)
			}
		}
		existing = append(existing, read)
		names[read] = f
	}
	// x/crypto skips the lines it cannot parse, as ssh does, but fails a
	// file that has no other line; ssh reads such a file as empty (an
	// unknown marker on the only line, say), and so does this, with a
	// warning. At most one retry per file.
	var db *knownhosts.HostKeyDB
	for {
		var err error
		if db, err = knownhosts.NewDB(existing...); err == nil {
			break
		}
		i := slices.IndexFunc(existing, func(read string) bool {
			return strings.HasPrefix(err.Error(), "knownhosts: "+read+": no valid entries")
		})
		if i < 0 {
			return fmt.Errorf("sshdial: reading known_hosts: %s", restoreNames(err.Error(), names))
		}
		c.log.Warn("sshdial: a known_hosts file has no line that can be read; it is taken as empty, as ssh does",
			"file", names[existing[i]], "err", restoreNames(err.Error(), names))
		existing = slices.Delete(existing, i, i+1)
	}
	c.mu.Lock()
	c.db, c.names, c.certLines = db, names, certLines
	c.mu.Unlock()
	return nil
}

// maxKnownHostsFile bounds the size of a known_hosts file, which is read
// whole: a file that never ends (/dev/zero by mistake) or a runaway one
// fails the connection instead of filling memory. Fleets' global files of
// tens of thousands of hosts stay far below it.
const maxKnownHostsFile = 64 << 20

// readKnownHostsFile reads a known_hosts file of at most maxKnownHostsFile
// bytes.
func readKnownHostsFile(file string) ([]byte, error) {
	return readFileAtMost(file, maxKnownHostsFile, "64 MiB")
}

// restoreNames replaces the names of lowercased copies in msg by the files
// they stand for.
func restoreNames(msg string, names map[string]string) string {
	// Longest first: a copy's name may begin another's (/proc/self/fd/7
	// and /proc/self/fd/71).
	reads := slices.SortedFunc(maps.Keys(names), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, read := range reads {
		if f := names[read]; read != f {
			msg = strings.ReplaceAll(msg, read, f)
		}
	}
	return msg
}

// lowerHostPatterns returns known_hosts data with the host patterns of
// every line in lowercase, line for line, and whether anything changed.
// Hashed names ("|1|...") are left alone: ssh(1) hashes the lowercased
// name, and the hash is case-sensitive base64.
func lowerHostPatterns(data []byte) ([]byte, bool) {
	out := bytes.Clone(data)
	changed := false
	for start := 0; start < len(out); {
		end := bytes.IndexByte(out[start:], '\n')
		if end < 0 {
			end = len(out)
		} else {
			end += start
		}
		line := out[start:end]
		i := skipBlanks(line, 0)
		if i < len(line) && line[i] == '@' { // a marker: the hosts come next
			i = skipBlanks(line, skipField(line, i))
		}
		if i < len(line) && line[i] != '#' && line[i] != '|' {
			for j, end := i, skipField(line, i); j < end; j++ {
				if 'A' <= line[j] && line[j] <= 'Z' {
					line[j] += 'a' - 'A'
					changed = true
				}
			}
		}
		start = end + 1
	}
	return out, changed
}

func skipBlanks(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
		i++
	}
	return i
}

func skipField(line []byte, i int) int {
	for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
		i++
	}
	return i
}

// openSSHView returns known_hosts data (its host patterns lowercased) as
// x/crypto/ssh/knownhosts must read it to find for host what ssh(1) finds
// for it, line for line, and whether that differs from data. host is the
// name ssh looks up, host or [host]:port (ssh's put_host_port), which
// x/crypto takes apart: it reads "host:2222" and "[host]:22" in a pattern
// as a host and port, where for ssh they match no name ever looked up;
// wildcards in a port ("[*]:*", "*" for a host on port 2222) not at all,
// where ssh matches the whole name; skeema/knownhosts then looks up
// [host]:2222 as host on port 22 when any pattern has a wildcard, which
// ssh never does; a hashed name with a salt of any length, a key blob
// whose base64 has stray bits, a tab-ended marker on a line that has a
// space (ssh: no marker, check_markers), and "!,host" (ssh: host) differ
// too, as does "rsa-sha2-512" as a key type, which ssh takes for ssh-rsa.
//
// So each line is read as ssh reads it (hostfile.c, match.c): one that
// holds a key for host becomes that key under a pattern that matches the
// looked-up address only, one that does not keeps its key under a pattern
// that matches nothing; a line ssh and x/crypto read alike stays as it is,
// so that an ordinary file needs no copy. @revoked lines apply to every
// host in x/crypto, which is stricter than ssh, and stay as they are.
func openSSHView(data []byte, host string, port int) ([]byte, bool) {
	match := "*"
	if port != 22 {
		match = "[*]:" + strconv.Itoa(port)
	}
	lines := bytes.Split(data, []byte("\n"))
	differs := false
	for i, line := range lines {
		out, changed := openSSHLine(line, host, match)
		if port != 22 && skeemaWildcard(out) {
			// skeema would look host up on port 22 (see above).
			out, changed = nil, true
		}
		if changed {
			lines[i], differs = out, true
		}
	}
	if !differs {
		return data, false
	}
	return bytes.Join(lines, []byte("\n")), true
}

// noMatch is a host pattern that x/crypto matches with no address.
const noMatch = "!none"

// openSSHLine is openSSHView for one line: the line x/crypto must read,
// and whether it differs from line. match is a pattern that x/crypto
// matches with the looked-up address only.
//
// A line longer than longLine (x/crypto fails a whole file on a line of 64
// KiB, ssh reads any) is always rewritten: to its marker and key alone
// under match or noMatch, or to an empty line when it holds no key ssh
// would read.
func openSSHLine(line []byte, host, match string) ([]byte, bool) {
	long := len(line) > longLine
	text, cut := line, false
	if i := revokedHostsNUL(line); i >= 0 {
		// ssh 9.2 reads the key of such a line past the NUL; later
		// versions skip the line. Taking the revocation is the stricter.
		text, cut = bytes.Clone(line), true
		text[i] = ' '
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text, cut = text[:i], true // ssh reads a C string
	}
	// x/crypto drops a \r before the newline; ssh's base64 decoder skips it.
	text = bytes.TrimSuffix(text, []byte("\r"))
	same := func() ([]byte, bool) {
		if long {
			return nil, true // nothing ssh would read for host
		}
		if cut {
			return text, true
		}
		return line, false
	}
	cp := bytes.TrimLeft(text, " \t")
	if len(cp) == 0 || cp[0] == '#' {
		return same()
	}
	marker, rest, ok := sshMarker(cp)
	if !ok {
		if w, _, _ := cutBlank(cp); string(w) == "@cert-authority" && !long {
			return append([]byte("#"), text...), true // an authority x/crypto would trust
		}
		return same() // x/crypto fails it too
	}
	hosts, rest, ok := cutBlank(rest)
	if !ok {
		return same() // no key: nothing for either
	}
	safe := samePatterns(string(hosts))
	m := matchKnownHost(host, string(hosts))
	var key ssh.PublicKey
	var typ, b64 []byte
	if m == 1 || long {
		key, typ, b64 = readHostKey(bytes.TrimLeft(rest, " \t"))
	}
	if marker != "" {
		marker += " "
	}
	switch {
	case key != nil && m == 1:
		canonical := base64.StdEncoding.EncodeToString(key.Marshal())
		if safe && string(typ) == key.Type() && string(b64) == canonical && !long {
			return same()
		}
		return []byte(marker + match + " " + key.Type() + " " + canonical), true
	case long && key == nil:
		return nil, true
	case long:
		// A @revoked key stays revoked: x/crypto revokes it for every
		// host, whatever the pattern.
		return []byte(marker + noMatch + " " + key.Type() + " " + base64.StdEncoding.EncodeToString(key.Marshal())), true
	case marker == "@revoked " || safe && m != 1:
		return same()
	default:
		// No key for host, where x/crypto might find one.
		return append([]byte(marker+noMatch), rest...), true
	}
}

// revokedHostsNUL returns where the NUL byte is that ends the host names
// of a @revoked line ("@revoked host\x00 key"), or -1.
func revokedHostsNUL(line []byte) int {
	cp := bytes.TrimLeft(line, " \t")
	rest, ok := bytes.CutPrefix(cp, []byte("@revoked"))
	if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
		return -1
	}
	hosts := bytes.TrimLeft(rest, " \t")
	end := bytes.IndexAny(hosts, " \t\x00")
	if end <= 0 || hosts[end] != 0 {
		return -1
	}
	return len(line) - len(hosts) + end
}

// longLine is the length over which openSSHLine rewrites a known_hosts
// line whatever it holds: well under the 64 KiB at which x/crypto fails
// the file, and over any line a key alone makes.
const longLine = 16 << 10

// skeemaWildcard reports whether skeema/knownhosts takes line for one
// with a wildcard host pattern (its NewDB).
func skeemaWildcard(line []byte) bool {
	line = bytes.TrimSpace(line)
	if rest, ok := xcryptoCertAuthority(line); ok {
		line = rest
	}
	if i := bytes.IndexAny(line, "\t "); i >= 0 {
		line = line[:i]
	}
	i := bytes.IndexByte(line, '*')
	return i >= 0 && !bytes.Contains(line[i:], []byte("]:"))
}

// xcryptoCertAuthority reports whether x/crypto (and skeema) read line as
// a @cert-authority line, and returns the rest of it after the marker.
func xcryptoCertAuthority(line []byte) (rest []byte, ok bool) {
	line = bytes.TrimSpace(line)
	if len(line) > 15 && bytes.HasPrefix(line, []byte("@cert-authority")) && (line[15] == ' ' || line[15] == '\t') {
		return bytes.TrimSpace(line[16:]), true
	}
	return nil, false
}

// cutBlank returns s up to its first space or tab, and the rest from
// there; ok is false if s has none.
func cutBlank(s []byte) (field, rest []byte, ok bool) {
	i := bytes.IndexAny(s, " \t")
	if i < 0 {
		return s, nil, false
	}
	return s[:i], s[i:], true
}

// sshMarker is OpenSSH's check_markers: the marker of a line ("" for
// none) and the rest after it and its blanks. The marker ends at the
// line's first space, or at its first tab if it has no space.
func sshMarker(cp []byte) (marker string, rest []byte, ok bool) {
	for len(cp) > 0 && cp[0] == '@' {
		if marker != "" {
			return "", nil, false
		}
		sp := bytes.IndexByte(cp, ' ')
		if sp < 0 {
			sp = bytes.IndexByte(cp, '\t')
		}
		if sp <= 1 || sp >= 32 {
			return "", nil, false
		}
		marker = string(cp[:sp])
		if marker != "@cert-authority" && marker != "@revoked" {
			return "", nil, false
		}
		cp = bytes.TrimLeft(cp[sp:], " \t")
	}
	return marker, cp, true
}

// samePatterns reports whether x/crypto matches the host patterns as ssh
// does for any looked-up name: names and [name]:port with no wildcard,
// negation, port 22 or other port syntax, or a hashed name in the form
// ssh writes it.
func samePatterns(hosts string) bool {
	if hosts[0] == '|' {
		parts := strings.Split(hosts, "|")
		return len(parts) == 4 && parts[1] == "1" && canonicalSHA1(parts[2]) && canonicalSHA1(parts[3])
	}
	for _, p := range strings.Split(hosts, ",") {
		if len(p) >= 1023 || strings.ContainsAny(p, "*?!ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return false
		}
		if name, port, ok := strings.Cut(strings.TrimPrefix(p, "["), "]:"); ok && p[0] == '[' {
			if strings.ContainsAny(name, "[]") || port == "" || port == "22" || port[0] == '0' || strings.Trim(port, "0123456789") != "" {
				return false
			}
		} else if strings.ContainsAny(p, "[]:") {
			return false
		}
	}
	return true
}

// canonicalSHA1 reports whether s is the base64 of a SHA-1 sized value,
// as ssh writes it.
func canonicalSHA1(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) == sha1.Size && base64.StdEncoding.EncodeToString(b) == s
}

// matchKnownHost is OpenSSH's match_maybe_hashed: 1 if the host patterns
// match the looked-up name, 0 if not, -1 for a hashed name ssh cannot
// read (the line is skipped).
func matchKnownHost(name, hosts string) int {
	if hosts[0] != '|' {
		if sshconfig.MatchPatternList(name, hosts, true) == 1 { // match_hostname
			return 1
		}
		return 0
	}
	// host_hash with the salt of the entry (extract_salt).
	s, ok := strings.CutPrefix(hosts, "|1|")
	i := strings.IndexByte(s, '|')
	if !ok || i <= 0 || i > 1024 {
		return -1
	}
	salt, ok := decodeBase64(s[:i], 256)
	if !ok || len(salt) != sha1.Size {
		return -1
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	if hosts == "|1|"+base64.StdEncoding.EncodeToString(salt)+"|"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		return 1
	}
	return 0
}

// sshKeyTypes are the key type names OpenSSH reads in known_hosts
// (sshkey_read), and the type of the key each must name.
var sshKeyTypes = map[string]string{
	"rsa-sha2-256":                                ssh.KeyAlgoRSA,
	"rsa-sha2-512":                                ssh.KeyAlgoRSA,
	"rsa-sha2-256-cert-v01@openssh.com":           ssh.CertAlgoRSAv01,
	"rsa-sha2-512-cert-v01@openssh.com":           ssh.CertAlgoRSAv01,
	"webauthn-sk-ecdsa-sha2-nistp256@openssh.com": ssh.KeyAlgoSKECDSA256,
}

// readHostKey is OpenSSH's sshkey_read: a key type name, blanks, and the
// base64 of a key of that type. It returns the key (nil if ssh would not
// read it), and the type and base64 fields as written.
func readHostKey(cp []byte) (key ssh.PublicKey, typ, b64 []byte) {
	typ, rest, ok := cutBlank(cp)
	if !ok {
		return nil, nil, nil
	}
	want, ok := sshKeyTypes[string(typ)]
	if !ok {
		want = string(typ)
	}
	b64, _, _ = cutBlank(bytes.TrimLeft(rest, " \t"))
	blob, ok := decodeBase64(string(b64), len(b64))
	if !ok || len(blob) == 0 {
		return nil, nil, nil
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil || key.Type() != want {
		return nil, nil, nil
	}
	return key, typ, b64
}

// decodeBase64 is OpenBSD's b64_pton into a buffer of size bytes, as ssh
// decodes known_hosts: blanks anywhere are skipped, the padding is
// required, and the bits it leaves over must be zero.
func decodeBase64(src string, size int) ([]byte, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	isSpace := func(c byte) bool { return c == ' ' || '\t' <= c && c <= '\r' }
	out := make([]byte, size+1)
	n, state, i := 0, 0, 0
	for ; i < len(src) && src[i] != '='; i++ {
		if isSpace(src[i]) {
			continue
		}
		v := strings.IndexByte(alphabet, src[i])
		room := n + 1 // states 1 and 2 fill in two bytes
		if state == 0 || state == 3 {
			room = n
		}
		if v < 0 || room >= size {
			return nil, false
		}
		switch state {
		case 0:
			out[n] = byte(v << 2)
		case 1:
			out[n] |= byte(v >> 4)
			out[n+1] = byte(v&0x0f) << 4
			n++
		case 2:
			out[n] |= byte(v >> 2)
			out[n+1] = byte(v&0x03) << 6
			n++
		case 3:
			out[n] |= byte(v)
			n++
		}
		state = (state + 1) % 4
	}
	if i == len(src) {
		return out[:n], state == 0
	}
	// A pad: one after three characters, two after two, then blanks only.
	i++
	switch state {
	case 2:
		for i < len(src) && isSpace(src[i]) {
			i++
		}
		if i == len(src) || src[i] != '=' {
			return nil, false
		}
		i++
	case 3:
	default:
		return nil, false
	}
	for ; i < len(src); i++ {
		if !isSpace(src[i]) {
			return nil, false
		}
	}
	return out[:n], out[n] == 0
}

func (c *hostKeyChecker) current() (*knownhosts.HostKeyDB, map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.db, c.certLines
}

// lookup returns db's check, whose errors name the known_hosts files
// themselves, not the copies load read.
func (c *hostKeyChecker) lookup(db *knownhosts.HostKeyDB) ssh.HostKeyCallback {
	c.mu.Lock()
	names := c.names
	c.mu.Unlock()
	check := db.HostKeyCallback()
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		err := check(addr, remote, key)
		var keyErr *xknownhosts.KeyError
		var rev *xknownhosts.RevokedError
		switch {
		case errors.As(err, &keyErr):
			for i, k := range keyErr.Want {
				if f, ok := names[k.Filename]; ok {
					keyErr.Want[i].Filename = f
				}
			}
		case errors.As(err, &rev):
			if f, ok := names[rev.Revoked.Filename]; ok {
				rev.Revoked.Filename = f
			}
		}
		return err
	}
}

// newError returns a HostKeyError about key.
func (c *hostKeyChecker) newError(sentinel error, key ssh.PublicKey, detail string) *HostKeyError {
	typ, fp := describeKey(key)
	return &HostKeyError{
		Host:        c.host,
		KeyType:     typ,
		Fingerprint: fp,
		Files:       slices.Clone(c.files),
		Err:         sentinel,
		detail:      detail,
	}
}

// describeKey returns the type and SHA256 fingerprint of key; for a
// certificate, the certificate's type and its key's fingerprint, as OpenSSH
// shows them.
func describeKey(key ssh.PublicKey) (typ, fingerprint string) {
	if cert, ok := key.(*ssh.Certificate); ok {
		return cert.Type(), ssh.FingerprintSHA256(cert.Key)
	}
	return key.Type(), ssh.FingerprintSHA256(key)
}

func describeKnown(k xknownhosts.KnownKey) string {
	return fmt.Sprintf("%s:%d (%s %s)", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key))
}

// check is the ssh.HostKeyCallback.
func (c *hostKeyChecker) check(_ string, remote net.Addr, key ssh.PublicKey) error {
	if key == nil {
		return errors.New("sshdial: host key check: no host key")
	}
	if _, ok := remote.(*net.TCPAddr); !ok {
		// x/crypto's check splits remote when the address is empty only, but
		// it must be an address.
		remote = &net.TCPAddr{IP: net.IPv4zero}
	}
	db, certLines := c.current()
	lookup := c.lookup(db)

	if cert, ok := key.(*ssh.Certificate); ok {
		for i, k := range []ssh.PublicKey{cert.Key, cert.SignatureKey} {
			var rev *xknownhosts.RevokedError
			if errors.As(lookup(c.addr, remote, k), &rev) {
				return c.revoked(key, i == 1, rev)
			}
		}
		if ca, ok := c.authority(db, cert.SignatureKey); ok {
			err := lookup(c.addr, remote, cert)
			if err == nil {
				return nil
			}
			return c.newError(ErrHostKeyChanged, key, fmt.Sprintf(
				", a host certificate signed by the certificate authority in %s, but it is not valid for %s: %v; refusing to connect",
				describeKnown(ca), c.hostname, err))
		}
		// No authority known for the host: check the certified key as a
		// plain key, as OpenSSH does.
		key = cert.Key
	}

	if c.wasAccepted(key) {
		return nil
	}
	err := c.plainLookup(db, remote, key)
	if err == nil {
		return nil
	}
	var rev *xknownhosts.RevokedError
	if errors.As(err, &rev) {
		return c.revoked(key, false, rev)
	}
	var keyErr *xknownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return fmt.Errorf("sshdial: checking the host key of %s: %w", c.host, err)
	}
	var want []xknownhosts.KnownKey
	for _, k := range keyErr.Want {
		if !certLines[k.Filename+":"+strconv.Itoa(k.Line)] {
			want = append(want, k)
		}
	}
	if len(want) > 0 {
		return c.changed(key, want)
	}
	if prev := c.mem.get(c.host); prev != nil && !bytes.Equal(prev, key.Marshal()) {
		// Accepted earlier by this Dialer and in no file now: the key
		// changed while it ran.
		if k, err := ssh.ParsePublicKey(prev); err == nil {
			typ, fp := describeKey(k)
			return c.newError(ErrHostKeyChanged, key, fmt.Sprintf(
				", but this Dialer accepted another key for it before (%s %s), which no known_hosts file holds (StrictHostKeyChecking %s); refusing to connect",
				typ, fp, c.strict))
		}
	}
	if c.strict == "yes" {
		return c.unknown(key)
	}
	if err := c.acceptNew(remote, key); err != nil {
		return err
	}
	c.mem.set(c.host, key)
	return nil
}

// authority returns the @cert-authority entry for the host whose key is ca.
func (c *hostKeyChecker) authority(db *knownhosts.HostKeyDB, ca ssh.PublicKey) (xknownhosts.KnownKey, bool) {
	_, certLines := c.current()
	for _, k := range c.entries(db) {
		if certLines[k.Filename+":"+strconv.Itoa(k.Line)] && bytes.Equal(k.Key.Marshal(), ca.Marshal()) {
			return k, true
		}
	}
	return xknownhosts.KnownKey{}, false
}

// entries returns every entry for the host, with file and line: the
// lookup with a key that matches nothing lists them.
func (c *hostKeyChecker) entries(db *knownhosts.HostKeyDB) []xknownhosts.KnownKey {
	var keyErr *xknownhosts.KeyError
	placeholder := &net.TCPAddr{IP: net.IPv4zero}
	if !errors.As(c.lookup(db)(c.addr, placeholder, noKey{}), &keyErr) {
		return nil
	}
	return keyErr.Want
}

// plainLookup is the lookup of a plain host key, which only a line
// without a marker can hold: x/crypto also accepts the key of a
// @cert-authority line for the host, which ssh does not (it is an
// authority, not the host's key).
func (c *hostKeyChecker) plainLookup(db *knownhosts.HostKeyDB, remote net.Addr, key ssh.PublicKey) error {
	err := c.lookup(db)(c.addr, remote, key)
	if err != nil {
		return err
	}
	_, certLines := c.current()
	entries := c.entries(db)
	for _, k := range entries {
		if !certLines[k.Filename+":"+strconv.Itoa(k.Line)] && bytes.Equal(k.Key.Marshal(), key.Marshal()) {
			return nil
		}
	}
	return &xknownhosts.KeyError{Want: entries}
}

// noKey is a public key that no known_hosts line holds.
type noKey struct{}

func (noKey) Type() string                        { return "sshdial-no-key" }
func (noKey) Marshal() []byte                     { return []byte("sshdial-no-key") }
func (noKey) Verify([]byte, *ssh.Signature) error { return errors.New("sshdial: placeholder key") }

func (c *hostKeyChecker) wasAccepted(key ssh.PublicKey) bool {
	blob := key.Marshal()
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.accepted, func(b []byte) bool { return bytes.Equal(b, blob) })
}

func (c *hostKeyChecker) revoked(key ssh.PublicKey, authority bool, rev *xknownhosts.RevokedError) error {
	what := "which"
	if authority {
		what = "whose certificate authority"
	}
	return c.newError(ErrHostKeyChanged, key, fmt.Sprintf(
		", %s is marked @revoked in %s:%d; refusing to connect",
		what, rev.Revoked.Filename, rev.Revoked.Line))
}

func (c *hostKeyChecker) changed(key ssh.PublicKey, want []xknownhosts.KnownKey) error {
	var known []string
	files := map[string]bool{}
	for _, k := range want {
		known = append(known, describeKnown(k))
		files[k.Filename] = true
	}
	var remove []string
	for _, f := range c.files {
		if files[f] {
			remove = append(remove, fmt.Sprintf("ssh-keygen -R %s -f %s", shellQuote(c.host), shellQuote(f)))
		}
	}
	return c.newError(ErrHostKeyChanged, key, fmt.Sprintf(
		", but known_hosts holds another key for it: %s. Someone may be intercepting the connection, "+
			"or the host's key was replaced; if you know it was replaced, remove the old key with %q and connect again",
		strings.Join(known, ", "), strings.Join(remove, "; ")))
}

func (c *hostKeyChecker) unknown(key ssh.PublicKey) error {
	file := c.writeFile
	if file == "" && len(c.files) > 0 {
		file = c.files[0]
	}
	if file == "" {
		file = "~/.ssh/known_hosts"
	}
	scan := "ssh-keyscan"
	if c.port != 22 {
		scan += " -p " + strconv.Itoa(c.port)
	}
	if t := keyscanType(key.Type()); t != "" {
		scan += " -t " + t
	}
	scan += " " + shellQuote(c.hostname) + " >> " + shellQuote(file)
	return c.newError(ErrHostKeyUnknown, key, fmt.Sprintf(
		", which is in no known_hosts file (checked: %s). Check the fingerprint with the host's administrator, then add it with %q, "+
			"or set StrictHostKeyChecking accept-new to record it on the first connection",
		filesList(c.files), scan))
}

// keyscanType returns ssh-keyscan's -t name of a key type.
func keyscanType(t string) string {
	switch {
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	case strings.HasPrefix(t, "ecdsa-sha2-"):
		return "ecdsa"
	case t == ssh.KeyAlgoSKED25519:
		return "ed25519-sk"
	case t == ssh.KeyAlgoSKECDSA256:
		return "ecdsa-sk"
	}
	return ""
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,~", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// acceptNew records key for the host in writeFile and accepts it, unless
// the file, read again, now holds another key for the host. With
// StrictHostKeyChecking no, a key that cannot be recorded (no file to
// write, a name known_hosts would read as a pattern, a failed write) is
// accepted with a warning, as ssh(1) does; with accept-new it is refused.
func (c *hostKeyChecker) acceptNew(remote net.Addr, key ssh.PublicKey) error {
	typ, fp := describeKey(key)
	notRecorded := func(why string, err error) error {
		if c.strict == "no" {
			c.log.Warn("sshdial: StrictHostKeyChecking no: accepting a host key that is in no known_hosts file, without recording it",
				"host", c.host, "key", typ+" "+fp, "reason", why)
			return nil
		}
		return err
	}
	if c.writeFile == "" {
		return notRecorded("no known_hosts file to write", c.unknown(key))
	}
	if !validKnownHostsName(c.hostname) {
		return notRecorded("the name has characters that known_hosts reads as patterns", c.newError(ErrHostKeyUnknown, key, fmt.Sprintf(
			", which is in no known_hosts file (checked: %s); it is not recorded because the name %q has characters that known_hosts reads as patterns",
			filesList(c.files), c.hostname)))
	}
	// Another connection may have recorded a key since the files were read.
	if err := c.load(); err != nil {
		return err
	}
	db, certLines := c.current()
	err := c.plainLookup(db, remote, key)
	if err == nil {
		return nil
	}
	var keyErr *xknownhosts.KeyError
	if errors.As(err, &keyErr) {
		var want []xknownhosts.KnownKey
		for _, k := range keyErr.Want {
			if !certLines[k.Filename+":"+strconv.Itoa(k.Line)] {
				want = append(want, k)
			}
		}
		if len(want) > 0 {
			return c.changed(key, want)
		}
	} else {
		var rev *xknownhosts.RevokedError
		if errors.As(err, &rev) {
			return c.revoked(key, false, rev)
		}
		return fmt.Errorf("sshdial: checking the host key of %s: %w", c.host, err)
	}
	if err := appendKnownHost(c.writeFile, knownHostsLine(c.host, key)); err != nil {
		return notRecorded("writing "+c.writeFile+" failed: "+err.Error(),
			fmt.Errorf("sshdial: recording the host key of %s (StrictHostKeyChecking accept-new): %w", c.host, err))
	}
	c.mu.Lock()
	c.accepted = append(c.accepted, key.Marshal())
	c.mu.Unlock()
	msg := "sshdial: permanently added the host key to the list of known hosts"
	if c.strict == "no" {
		// ssh says the same with no; the warning is that nothing was checked.
		c.log.Warn(msg+" (StrictHostKeyChecking no: the key was not checked)", "host", c.host, "key", typ+" "+fp, "file", c.writeFile)
	} else {
		c.log.Info(msg, "host", c.host, "key", typ+" "+fp, "file", c.writeFile)
	}
	return nil
}

// validKnownHostsName reports whether a host name can be written to
// known_hosts as is: no pattern characters, separators or spaces.
func validKnownHostsName(h string) bool {
	return h != "" && h[0] != '-' && strings.IndexFunc(h, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:%", r))
	}) < 0
}

// knownHostsLine returns the known_hosts line, with its newline, for key
// under host (as known_hosts names it).
func knownHostsLine(host string, key ssh.PublicKey) string {
	return host + " " + strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n") + "\n"
}

// appendKnownHost appends line to file in one write with O_APPEND, so that
// concurrent writers do not interleave, creating the directory 0700 and the
// file 0600 if needed.
func appendKnownHost(file, line string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// A last line without its newline would swallow ours.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil || errors.Is(err, io.EOF) {
			if last[0] != '\n' {
				line = "\n" + line
			}
		}
	}
	_, werr := f.WriteString(line)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
