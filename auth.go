package sshdial

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authConfig says how to log in to one hop.
type authConfig struct {
	User string
	// IdentityFiles are the private key files to offer, from the config.
	// When nil, OpenSSH's defaults that exist are used: ~/.ssh/id_rsa,
	// id_ecdsa, id_ecdsa_sk, id_ed25519 and id_ed25519_sk, in that order.
	// A file that is missing but has a FILE.pub names a key that only the
	// agent holds (it selects that agent key with IdentitiesOnly).
	IdentityFiles    []string
	CertificateFiles []string
	IdentitiesOnly   bool   // only the identity files' keys, also from the agent
	AgentSocket      string // "" = $SSH_AUTH_SOCK (none if unset); "none" = no agent; "$VAR" = that variable
	Home             string // for the default identity files; "" = os.UserHomeDir
	// Passphrase is asked for an encrypted key's passphrase, only when the
	// server would accept the key. nil: encrypted keys are skipped (and the
	// log says so). An empty passphrase also skips the key.
	// When the key is decrypted during the handshake, a wrong passphrase,
	// an error or an empty answer ends the publickey attempts with that
	// error (x/crypto tries no key after one that fails to sign).
	Passphrase func(file string) ([]byte, error)
	Password   func() (string, error) // nil: no password auth
	Signers    []ssh.Signer           // extra keys given in code, tried first
	// KeyboardInteractive answers the server's keyboard-interactive
	// questions (one-time codes, PAM prompts); nil: the method is not used.
	KeyboardInteractive ssh.KeyboardInteractiveChallenge
	// PreferredAuthentications is ssh_config's: the methods to try, in
	// order. nil: OpenSSH's default order for the methods sshdial has,
	// publickey, keyboard-interactive, password. Names sshdial does not
	// implement (gssapi-with-mic, hostbased) are skipped, as ssh skips
	// unknown ones; a method not named is not used.
	PreferredAuthentications []string
	// NumberOfPasswordPrompts is how many times password and
	// keyboard-interactive are each tried before moving on (a wrong
	// password or code is asked again). 0 means ssh's default, 3; a
	// negative value means none at all (ssh_config's 0), which turns both
	// methods off.
	NumberOfPasswordPrompts int
}

// defaultPasswordPrompts is ssh_config's NumberOfPasswordPrompts default.
const defaultPasswordPrompts = 3

// defaultPreferredAuthentications is OpenSSH's order, less the methods
// sshdial does not implement (gssapi-with-mic, hostbased).
var defaultPreferredAuthentications = []string{"publickey", "keyboard-interactive", "password"}

// hopAuthPreferences returns the PreferredAuthentications and
// NumberOfPasswordPrompts of h, as authConfig takes them: nil for ssh's
// order; 0 for the default count, -1 for none.
func hopAuthPreferences(h *hop) (preferred []string, prompts int) {
	return splitPreferredAuthentications(h.PreferredAuthentications), h.NumberOfPasswordPrompts
}

// splitPreferredAuthentications splits ssh_config's PreferredAuthentications
// value ("keyboard-interactive,password") into method names; "" gives nil,
// the default order.
func splitPreferredAuthentications(value string) []string {
	var names []string
	for name := range strings.SplitSeq(value, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// A Challenge is one round of keyboard-interactive questions from an SSH
// server, as WithKeyboardInteractive's callback gets it. Name, Instruction
// and Questions are the server's text, as it sent them: a program that
// shows them on a terminal should remove control characters first.
type Challenge struct {
	// Host is the hop that asks: the destination or a jump host, as
	// given (before HostName). User is the user logging in there.
	Host, User string
	// Name and Instruction may be empty.
	Name, Instruction string
	// Questions may be empty (the server only has something to say in
	// Name or Instruction); the answer then has no strings. A round with
	// no questions and no text (sshd with PAM sends one when PAM is done)
	// is answered without calling the callback.
	Questions []string
	// Echo says, per question, whether its answer may be shown as it is
	// typed (a user name) or not (a password, a one-time code).
	Echo []bool
}

// challengeFunc adapts WithKeyboardInteractive's callback to x/crypto's for
// one hop.
func challengeFunc(ctx context.Context, answer func(context.Context, Challenge) ([]string, error), host, user string) ssh.KeyboardInteractiveChallenge {
	return func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		if len(questions) == 0 && name == "" && instruction == "" {
			// Nothing to show or answer: sshd with PAM sends such a
			// round once PAM is done.
			return nil, nil
		}
		return bounded(ctx, func() ([]string, error) {
			return answer(ctx, Challenge{Host: host, User: user, Name: name, Instruction: instruction,
				Questions: questions, Echo: echos})
		})
	}
}

// agentDialTimeout bounds how long connecting to the agent may take.
const agentDialTimeout = 5 * time.Second // also for listing its keys

// authMethods returns the methods for x/crypto, in OpenSSH's order: the keys
// given in code, the agent's keys (only those of the identity files with
// IdentitiesOnly), the identity files not already offered through the agent,
// each key's certificate ("<file>-cert.pub" or a CertificateFile) offered
// before the key. All keys are in one publickey method, since x/crypto tries
// each method once. The methods (publickey, keyboard-interactive, password)
// are in the order of PreferredAuthentications, by default that one;
// x/crypto tries the first the server allows, then the next. Password and
// keyboard-interactive are each tried up to NumberOfPasswordPrompts times.
//
// closeFn closes the agent connection; call it after the handshake (the
// methods cannot be used after it, so call authMethods for each handshake).
// The agent connection is also closed as soon as ctx ends: an agent that
// does not answer (waiting for an ssh-add -c confirmation or a FIDO touch)
// then fails the signature it was asked for, instead of holding the
// handshake past its context, and a Dialer's Close with it.
// tried records, without secrets, what was offered and which key or password
// logged in. An unreachable agent or an unusable key file is no error: the
// log says why it was left out. err is a key file that could not be decrypted
// with the passphrase given, or a failing Passphrase callback; it names the
// file, never the passphrase.
func authMethods(ctx context.Context, cfg authConfig) (methods []ssh.AuthMethod, tried *authLog, closeFn func(), err error) {
	log := &authLog{user: cfg.User}
	closeFn = func() {}

	var offers []ssh.Signer
	offer := func(s ssh.Signer, source string) {
		offers = append(offers, log.wrap(s, source))
	}

	// 1. Keys given in code.
	for _, s := range cfg.Signers {
		if s != nil {
			offer(s, "code")
		}
	}

	// The identity files, read without asking for passphrases yet.
	files, defaults := cfg.IdentityFiles, false
	if files == nil {
		files, defaults = defaultIdentityFiles(cfg.Home), true
	}
	var ids []*identity
	for _, f := range files {
		id := loadIdentity(f, defaults, log)
		if id == nil {
			continue
		}
		if dup := findIdentity(ids, id.pub); dup != nil {
			log.skip(id.file, "same key as "+dup.file)
			continue
		}
		ids = append(ids, id)
	}
	certs := loadCertificates(cfg.CertificateFiles, ids, log)

	// 2. The agent's keys.
	if sock := agentSocket(cfg.AgentSocket); sock != "" {
		dialer := net.Dialer{Timeout: agentDialTimeout}
		conn, err := dialer.DialContext(ctx, "unix", sock)
		if err != nil {
			log.note(fmt.Sprintf("agent %s unreachable: %v", sock, err))
		} else {
			// Signing happens during the handshake, with no deadline of
			// its own (a confirmation may take a person a while): only
			// ctx's end, which closes the connection, stops a stuck agent.
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			var once sync.Once
			closeFn = func() { once.Do(func() { stop(); conn.Close() }) }
			// Listing the keys needs no person: it gets a deadline too.
			conn.SetDeadline(time.Now().Add(agentDialTimeout))
			signers, err := agent.NewClient(conn).Signers()
			conn.SetDeadline(time.Time{})
			if err != nil {
				log.note(fmt.Sprintf("agent %s: listing keys: %v", sock, err))
			}
			inAgent := map[string]bool{} // certificates the agent holds
			for _, s := range signers {
				if c, ok := s.PublicKey().(*ssh.Certificate); ok {
					inAgent[string(c.Marshal())] = true
				}
			}
			for _, s := range signers {
				key := underlyingKey(s.PublicKey())
				id := findIdentity(ids, key)
				if cfg.IdentitiesOnly && id == nil {
					log.skipKey(s.PublicKey(), "agent", "not an IdentityFile's key (IdentitiesOnly)")
					continue
				}
				if id != nil {
					id.inAgent = true
				}
				if _, ok := s.PublicKey().(*ssh.Certificate); !ok {
					// Certificates of files for this key, unless the agent has them.
					for _, c := range certsFor(certs, key) {
						if inAgent[string(c.cert.Marshal())] {
							continue
						}
						if cs, err := ssh.NewCertSigner(c.cert, s); err == nil {
							offer(cs, c.file+" (key in agent)")
							c.used = true
						}
					}
				}
				offer(s, "agent")
			}
		}
	}

	// 3. Identity files not offered through the agent.
	for _, id := range ids {
		switch {
		case id.inAgent:
			log.skip(id.file, "offered through the agent")
			continue
		case id.reason != "":
			log.skip(id.file, id.reason)
			continue
		case id.encrypted && cfg.Passphrase == nil:
			log.skip(id.file, "encrypted, no passphrase callback")
			continue
		}
		signer := id.signer
		if signer == nil && id.encrypted {
			if id.pub != nil {
				// Decrypted when the server would accept the key.
				signer = &lazySigner{id: id, passphrase: cfg.Passphrase}
			} else {
				// No public key to offer without decrypting.
				s, err := decryptIdentity(id, cfg.Passphrase)
				if errors.Is(err, errNoPassphrase) {
					log.skip(id.file, "encrypted, no passphrase given")
					continue
				}
				if err != nil {
					closeFn()
					return nil, nil, func() {}, err
				}
				signer = s
				id.pub = s.PublicKey()
			}
		}
		for _, c := range certsFor(certs, id.pub) {
			if cs, err := ssh.NewCertSigner(c.cert, signer); err == nil {
				offer(cs, c.file)
				c.used = true
			}
		}
		offer(signer, id.file)
	}
	for _, c := range certs {
		if !c.used {
			log.skipKey(c.cert, c.file, "no private key for this certificate")
		}
	}

	prompts := cfg.NumberOfPasswordPrompts
	if prompts == 0 {
		prompts = defaultPasswordPrompts
	}
	byName := map[string]ssh.AuthMethod{}
	if len(offers) > 0 {
		byName["publickey"] = ssh.PublicKeys(offers...)
	}
	if cfg.KeyboardInteractive != nil && prompts > 0 {
		kbd := cfg.KeyboardInteractive
		byName["keyboard-interactive"] = ssh.RetryableAuthMethod(ssh.KeyboardInteractive(
			func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				answers, err := kbd(name, instruction, questions, echos)
				log.keyboardInteractive(len(questions), err)
				return answers, err
			}), prompts)
	}
	if cfg.Password != nil && prompts > 0 {
		pw := cfg.Password
		byName["password"] = ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			p, err := pw()
			log.password(err)
			return p, err
		}), prompts)
	}
	order := cfg.PreferredAuthentications
	if order == nil {
		order = defaultPreferredAuthentications
	}
	for _, name := range order {
		if m, ok := byName[name]; ok {
			methods = append(methods, m)
			delete(byName, name) // named twice: the first place counts
		}
	}
	for _, name := range defaultPreferredAuthentications {
		if _, ok := byName[name]; ok {
			log.note(name + " not used: not in PreferredAuthentications")
		}
	}
	if prompts < 0 && (cfg.KeyboardInteractive != nil || cfg.Password != nil) {
		log.note("password and keyboard-interactive not used: NumberOfPasswordPrompts is 0")
	}
	return methods, log, closeFn, nil
}

// defaultIdentityFiles returns OpenSSH's default identity files, in its order.
func defaultIdentityFiles(home string) []string {
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return nil
	}
	var files []string
	for _, name := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"} {
		files = append(files, filepath.Join(home, ".ssh", name))
	}
	return files
}

// agentSocket returns the agent socket to use, or "" for none.
func agentSocket(s string) string {
	switch {
	case s == "none":
		return ""
	case s == "" || s == "SSH_AUTH_SOCK":
		return os.Getenv("SSH_AUTH_SOCK")
	case strings.HasPrefix(s, "$"):
		return os.Getenv(strings.TrimPrefix(s, "$"))
	}
	return s
}

// identity is an identity file's key.
type identity struct {
	file      string
	data      []byte        // the encrypted private key file; nil when not encrypted
	pub       ssh.PublicKey // nil when unknown (an encrypted PEM key without FILE.pub)
	signer    ssh.Signer    // nil when encrypted or unusable
	encrypted bool
	reason    string // why it cannot be used from the file (it may still be in the agent)
	inAgent   bool

	mu        sync.Mutex
	decrypted ssh.Signer
	err       error
}

// loadIdentity reads an identity file without asking for a passphrase. It
// returns nil, recording why, when the file gives no key at all. Missing
// default files are skipped silently, as OpenSSH does.
func loadIdentity(file string, isDefault bool, log *authLog) *identity {
	id := &identity{file: file}
	pub := readPublicKey(file + ".pub")
	data, err := readKeyFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if pub != nil {
			id.pub, id.reason = pub, "only "+file+".pub exists; its key is not in the agent"
			return id
		}
		if !isDefault {
			log.skip(file, "no such file")
		}
		return nil
	}
	if err != nil {
		log.skip(file, fmt.Sprintf("unreadable: %v", err))
		return nil
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		id.signer, id.pub = signer, signer.PublicKey()
	case errors.As(err, &missing):
		id.encrypted, id.data = true, data
		id.pub = missing.PublicKey
		if id.pub == nil {
			id.pub = pub
		}
	case strings.HasSuffix(file, "_sk") || (pub != nil && strings.HasPrefix(pub.Type(), "sk-")):
		// x/crypto cannot sign with FIDO security key files; an agent can.
		const why = "security key (FIDO) files are not supported; add the key to ssh-agent"
		if pub == nil {
			log.skip(file, why)
			return nil
		}
		id.pub, id.reason = pub, why
	case pub == nil:
		log.skip(file, fmt.Sprintf("not a usable private key: %v", err))
		return nil
	default:
		id.pub, id.reason = pub, fmt.Sprintf("not a usable private key: %v", err)
	}
	return id
}

// maxKeyFile bounds the size of a key or certificate file, as OpenSSH's
// MAX_KEY_FILE_SIZE: keys take a few kilobytes, and a device such as
// /dev/zero would be read until memory runs out.
const maxKeyFile = 1 << 20

// readKeyFile reads a key or certificate file of at most maxKeyFile bytes.
func readKeyFile(file string) ([]byte, error) {
	return readFileAtMost(file, maxKeyFile, "1 MiB")
}

// readFileAtMost reads file if it holds at most limit bytes, and else
// fails with an *fs.PathError saying that it is larger than shown (limit
// written for people), having read no more than limit+1 bytes.
func readFileAtMost(file string, limit int64, shown string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &fs.PathError{Op: "read", Path: file, Err: errors.New("larger than " + shown)}
	}
	return data, nil
}

// readPublicKey returns the key of an authorized_keys-format file, or nil.
func readPublicKey(file string) ssh.PublicKey {
	data, err := readKeyFile(file)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return pub
}

// findIdentity returns the identity whose key is pub, or nil.
func findIdentity(ids []*identity, pub ssh.PublicKey) *identity {
	if pub == nil {
		return nil
	}
	for _, id := range ids {
		if id.pub != nil && sameKey(id.pub, pub) {
			return id
		}
	}
	return nil
}

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// underlyingKey returns a certificate's key, or pub itself.
func underlyingKey(pub ssh.PublicKey) ssh.PublicKey {
	if c, ok := pub.(*ssh.Certificate); ok {
		return c.Key
	}
	return pub
}

// certFile is a user certificate read from a file.
type certFile struct {
	file string
	cert *ssh.Certificate
	used bool
}

// loadCertificates reads each identity's "<file>-cert.pub" and the
// CertificateFiles, without duplicates.
func loadCertificates(certFiles []string, ids []*identity, log *authLog) []*certFile {
	var certs []*certFile
	add := func(file string, explicit bool) {
		data, err := readKeyFile(file)
		if err != nil {
			if explicit {
				log.skip(file, fmt.Sprintf("unreadable certificate: %v", err))
			}
			return
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			log.skip(file, fmt.Sprintf("not a certificate: %v", err))
			return
		}
		cert, ok := pub.(*ssh.Certificate)
		if !ok || cert.CertType != ssh.UserCert {
			log.skip(file, "not a user certificate")
			return
		}
		for _, c := range certs {
			if bytes.Equal(c.cert.Marshal(), cert.Marshal()) {
				return
			}
		}
		certs = append(certs, &certFile{file: file, cert: cert})
	}
	for _, id := range ids {
		add(id.file+"-cert.pub", false)
	}
	for _, f := range certFiles {
		add(f, true)
	}
	return certs
}

// certsFor returns the certificates for key.
func certsFor(certs []*certFile, key ssh.PublicKey) []*certFile {
	var out []*certFile
	for _, c := range certs {
		if key != nil && sameKey(c.cert.Key, key) {
			out = append(out, c)
		}
	}
	return out
}

// errNoPassphrase is the Passphrase callback returning an empty passphrase.
var errNoPassphrase = errors.New("no passphrase given")

// decryptIdentity asks for id's passphrase and decrypts it, once. Its errors
// name the file, never the passphrase.
func decryptIdentity(id *identity, passphrase func(string) ([]byte, error)) (ssh.Signer, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.decrypted != nil || id.err != nil {
		return id.decrypted, id.err
	}
	id.decrypted, id.err = decrypt(id, passphrase)
	return id.decrypted, id.err
}

func decrypt(id *identity, passphrase func(string) ([]byte, error)) (ssh.Signer, error) {
	pass, err := passphrase(id.file)
	if err != nil {
		return nil, fmt.Errorf("sshdial: passphrase for %s: %w", id.file, err)
	}
	if len(pass) == 0 {
		return nil, fmt.Errorf("sshdial: key %s is encrypted: %w", id.file, errNoPassphrase)
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(id.data, pass)
	if err != nil {
		// x/crypto's errors do not hold the passphrase.
		return nil, fmt.Errorf("sshdial: decrypting %s (wrong passphrase?): %w", id.file, err)
	}
	if id.pub != nil && !sameKey(s.PublicKey(), id.pub) {
		return nil, fmt.Errorf("sshdial: %s does not hold the key of %s.pub", id.file, id.file)
	}
	return s, nil
}

// lazySigner is an encrypted identity file's key: x/crypto asks it to sign
// only once the server said it would accept the key, so the passphrase is
// asked for only then, as OpenSSH does.
type lazySigner struct {
	id         *identity
	passphrase func(string) ([]byte, error)
}

func (s *lazySigner) PublicKey() ssh.PublicKey { return s.id.pub }

func (s *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, "")
}

func (s *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	signer, err := decryptIdentity(s.id, s.passphrase)
	if err != nil {
		return nil, err
	}
	if as, ok := signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	if algorithm != "" && algorithm != signer.PublicKey().Type() {
		return nil, fmt.Errorf("sshdial: key %s cannot sign with %s", s.id.file, algorithm)
	}
	return signer.Sign(rand, data)
}

// authLog records what a handshake tried, for the error of a failed login
// and for a log line. It never holds a secret. Its methods are safe for
// concurrent use and on a nil *authLog.
type authLog struct {
	mu      sync.Mutex
	user    string
	entries []*authEntry
	last    *authEntry // the last key that signed, or the password
}

// authEntry is an offered key, the password, or something left out.
type authEntry struct {
	method      string // "publickey", "password", "keyboard-interactive", "skipped" or "note"
	keyType     string
	fingerprint string
	source      string // "code", "agent", a file path
	offered     bool   // x/crypto reached it (a publickey query was sent)
	signed      bool   // the server would accept it, and it signed
	text        string // why skipped, a note, or an error
	questions   int    // keyboard-interactive: how many questions were answered
}

// tried reports whether e is something offered to the server, rather than
// a note or something left out.
func (e *authEntry) tried() bool {
	return e.method == "publickey" || e.method == "password" || e.method == "keyboard-interactive"
}

func (e *authEntry) key() string {
	return fmt.Sprintf("%s %s (%s)", e.keyType, e.fingerprint, e.source)
}

func (e *authEntry) String() string {
	switch e.method {
	case "publickey":
		switch {
		case e.signed:
			return e.key() + ": accepted by the server, signed"
		case e.text != "":
			return e.key() + ": " + e.text
		case e.offered:
			return e.key() + ": refused"
		}
		return e.key() + ": not offered"
	case "password":
		if e.text != "" {
			return "password: " + e.text
		}
		return "password: sent"
	case "keyboard-interactive":
		switch {
		case e.text != "":
			return "keyboard-interactive: " + e.text
		case e.questions == 1:
			return "keyboard-interactive: 1 answer sent"
		}
		return fmt.Sprintf("keyboard-interactive: %d answers sent", e.questions)
	case "skipped":
		if e.keyType != "" {
			return "skipped " + e.key() + ": " + e.text
		}
		return "skipped " + e.source + ": " + e.text
	}
	return e.text
}

func (l *authLog) add(e *authEntry) *authEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	return e
}

func (l *authLog) skip(source, why string) {
	l.add(&authEntry{method: "skipped", source: source, text: why})
}

func (l *authLog) skipKey(pub ssh.PublicKey, source, why string) {
	l.add(&authEntry{method: "skipped", keyType: pub.Type(),
		fingerprint: ssh.FingerprintSHA256(underlyingKey(pub)), source: source, text: why})
}

func (l *authLog) note(text string) { l.add(&authEntry{method: "note", text: text}) }

func (l *authLog) password(err error) {
	e := &authEntry{method: "password"}
	if err != nil {
		e.text = fmt.Sprintf("no password: %v", err)
	}
	l.add(e)
	if err == nil {
		l.mu.Lock()
		l.last = e
		l.mu.Unlock()
	}
}

// keyboardInteractive records one round of keyboard-interactive questions:
// how many were answered, or the callback's error. Never the answers.
func (l *authLog) keyboardInteractive(questions int, err error) {
	e := &authEntry{method: "keyboard-interactive", questions: questions}
	if err != nil {
		e.text = fmt.Sprintf("no answer: %v", err)
	}
	l.add(e)
	if err == nil {
		l.mu.Lock()
		l.last = e
		l.mu.Unlock()
	}
}

// wrap returns s recording into l when x/crypto offers it and has it sign.
// It keeps the signature algorithms s supports.
func (l *authLog) wrap(s ssh.Signer, source string) ssh.Signer {
	pub := s.PublicKey()
	e := l.add(&authEntry{method: "publickey", keyType: pub.Type(),
		fingerprint: ssh.FingerprintSHA256(underlyingKey(pub)), source: source})
	ls := &loggedSigner{Signer: s, log: l, entry: e}
	switch s := s.(type) {
	case ssh.MultiAlgorithmSigner:
		return &loggedMultiSigner{loggedAlgorithmSigner{ls, s}, s}
	case ssh.AlgorithmSigner:
		return &loggedAlgorithmSigner{ls, s}
	}
	return ls
}

func (l *authLog) offered(e *authEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.offered = true
}

func (l *authLog) signed(e *authEntry, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		e.text = err.Error()
		return
	}
	e.signed = true
	l.last = e
}

// loggedSigner records into its log; x/crypto calls PublicKey for each key
// it offers, and Sign only for a key the server would accept.
type loggedSigner struct {
	ssh.Signer
	log   *authLog
	entry *authEntry
}

func (s *loggedSigner) PublicKey() ssh.PublicKey {
	s.log.offered(s.entry)
	return s.Signer.PublicKey()
}

func (s *loggedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	sig, err := s.Signer.Sign(rand, data)
	s.log.signed(s.entry, err)
	return sig, err
}

type loggedAlgorithmSigner struct {
	*loggedSigner
	as ssh.AlgorithmSigner
}

func (s *loggedAlgorithmSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	sig, err := s.as.SignWithAlgorithm(rand, data, algorithm)
	s.log.signed(s.entry, err)
	return sig, err
}

type loggedMultiSigner struct {
	loggedAlgorithmSigner
	ms ssh.MultiAlgorithmSigner
}

func (s *loggedMultiSigner) Algorithms() []string { return s.ms.Algorithms() }

// String lists, on one line, the keys, password and keyboard-interactive
// answers offered, in order, then what was left out and why.
func (l *authLog) String() string {
	if l == nil {
		return "nothing"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == 0 {
		return "no keys (no identity files, no agent keys), no password and no keyboard-interactive"
	}
	// What was offered, in order, then what was left out and why.
	var parts []string
	for _, e := range l.entries {
		if e.tried() {
			parts = append(parts, e.String())
		}
	}
	for _, e := range l.entries {
		if !e.tried() {
			parts = append(parts, e.String())
		}
	}
	return strings.Join(parts, "; ")
}

// accepted returns the key (type, fingerprint, source), "password" or
// "keyboard-interactive" that logged in, after a successful handshake; ""
// when none did. It is the last method that answered: with a server that
// asks for two (AuthenticationMethods publickey,keyboard-interactive), the
// second.
func (l *authLog) accepted() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.last == nil:
		return ""
	case l.last.method == "password" || l.last.method == "keyboard-interactive":
		return l.last.method
	}
	return l.last.key()
}

// authFailedError is a login that every method failed.
type authFailedError struct {
	user  string
	tried string
	err   error // x/crypto's
}

func (e *authFailedError) Error() string {
	hint := ""
	if strings.Contains(e.err.Error(), "Too many authentication failures") {
		hint = "; the server's MaxAuthTries ended the login: offer fewer keys (IdentitiesOnly with IdentityFile)"
	}
	return fmt.Sprintf("%v as %q; tried: %s%s (%v)", ErrAuthFailed, e.user, e.tried, hint, e.err)
}

func (e *authFailedError) Unwrap() []error { return []error{ErrAuthFailed, e.err} }

// authError returns x/crypto's handshake error err as an error matching
// ErrAuthFailed and listing what was tried when it is an authentication
// failure, and err unchanged otherwise.
func authError(err error, tried *authLog) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.Contains(msg, "ssh: unable to authenticate") &&
		// sshd's MaxAuthTries: too many keys offered (IdentitiesOnly helps).
		!strings.Contains(msg, "Too many authentication failures") {
		return err
	}
	user := ""
	if tried != nil {
		tried.mu.Lock()
		user = tried.user
		tried.mu.Unlock()
	}
	return &authFailedError{user: user, tried: tried.String(), err: err}
}
