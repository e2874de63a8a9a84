package sshdial

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// authHome makes a temporary HOME with an empty ~/.ssh, and no agent in the
// environment. It returns the .ssh directory.
func authHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	dir := filepath.Join(home, ".ssh")
	require.NoError(t, os.Mkdir(dir, 0o700))
	return dir
}

// authKeygen writes a key pair with ssh-keygen (pass "" for no passphrase)
// and returns its public key.
func authKeygen(t *testing.T, file, keyType, pass string, extra ...string) ssh.PublicKey {
	t.Helper()
	args := append([]string{"-q", "-t", keyType, "-N", pass, "-C", "test", "-f", file}, extra...)
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	require.NoError(t, err, "ssh-keygen: %s", out)
	pub := readPublicKey(file + ".pub")
	require.NotNil(t, pub)
	return pub
}

// authAuthorize lets pub log in to srv.
func authAuthorize(t *testing.T, srv *opensshd.Server, pub ssh.PublicKey) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(srv.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(ssh.MarshalAuthorizedKey(pub))
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// authAgent starts a real ssh-agent, stopped when the test ends, holding
// the given key files, and returns its socket.
func authAgent(t *testing.T, files ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "agent") // short: a socket path has a size limit
	require.NoError(t, err)
	sock := filepath.Join(dir, "sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	})
	// The socket file exists from bind on, before ssh-agent listens: wait
	// until it answers.
	require.Eventually(t, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "ssh-agent did not listen on its socket")
	authAgentAdd(t, sock, files...)
	return sock
}

func authAgentAdd(t *testing.T, sock string, files ...string) {
	t.Helper()
	for _, f := range files {
		cmd := exec.Command("ssh-add", f)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ssh-add: %s", out)
	}
}

// authSetup calls authMethods, closing the agent connection when the test ends.
func authSetup(t *testing.T, cfg authConfig) ([]ssh.AuthMethod, *authLog) {
	t.Helper()
	methods, log, closeFn, err := authMethods(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(closeFn)
	return methods, log
}

// authLogin logs in to srv with methods, and returns authError's error.
func authLogin(t *testing.T, srv *opensshd.Server, methods []ssh.AuthMethod, log *authLog) error {
	t.Helper()
	client, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
		User:            srv.User,
		Auth:            methods,
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return authError(err, log)
	}
	return client.Close()
}

// authState returns what the log says of the key offered from source.
func authState(t *testing.T, log *authLog, source string) string {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, e := range log.entries {
		if e.source == source {
			return e.String()
		}
	}
	t.Fatalf("%s is not in the log: %s", source, log.entries)
	return ""
}

// authOrder returns the sources of the offered keys, in order.
func authOrder(log *authLog) []string {
	log.mu.Lock()
	defer log.mu.Unlock()
	var out []string
	for _, e := range log.entries {
		if e.method == "publickey" {
			out = append(out, e.source)
		}
	}
	return out
}

// authOpenFiles counts the process's open files.
func authOpenFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(fds)
}

func fp(pub ssh.PublicKey) string { return ssh.FingerprintSHA256(pub) }

func newEd25519Signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s
}

func TestAuthDefaultIdentityFiles(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	rsaFile := filepath.Join(dir, "id_rsa")
	authKeygen(t, rsaFile, "rsa", "", "-b", "2048")
	ecdsaFile := filepath.Join(dir, "id_ecdsa")
	authKeygen(t, ecdsaFile, "ecdsa", "secret")
	edFile := filepath.Join(dir, "id_ed25519")
	edPub := authKeygen(t, edFile, "ed25519", "")
	authAuthorize(t, srv, edPub)
	skFile := filepath.Join(dir, "id_ed25519_sk")
	require.NoError(t, os.WriteFile(skFile, []byte("not a key x/crypto can use\n"), 0o600))

	methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none"})
	require.NoError(t, authLogin(t, srv, methods, log))

	assert.Equal(t, []string{rsaFile, edFile}, authOrder(log), "OpenSSH's order: id_rsa before id_ed25519")
	assert.Contains(t, authState(t, log, rsaFile), "refused")
	assert.Contains(t, authState(t, log, ecdsaFile), "encrypted, no passphrase callback")
	assert.Contains(t, authState(t, log, skFile), "security key")
	assert.Equal(t, "ssh-ed25519 "+fp(edPub)+" ("+edFile+")", log.accepted())
	assert.NotContains(t, log.String(), "secret")
}

func TestAuthOrderCodeAgentFile(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	agentFile := filepath.Join(dir, "agentkey")
	agentPub := authKeygen(t, agentFile, "ed25519", "")
	sock := authAgent(t, agentFile)
	file := filepath.Join(dir, "id_ed25519")
	filePub := authKeygen(t, file, "ed25519", "")
	authAuthorize(t, srv, filePub)
	code := newEd25519Signer(t)

	methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: sock, Signers: []ssh.Signer{code}})
	require.Len(t, methods, 1, "all keys in one publickey method: x/crypto tries a method once")
	require.NoError(t, authLogin(t, srv, methods, log))

	assert.Equal(t, []string{"code", "agent", file}, authOrder(log))
	assert.Contains(t, authState(t, log, "code"), fp(code.PublicKey())+" (code): refused")
	assert.Contains(t, authState(t, log, "agent"), fp(agentPub)+" (agent): refused")
	assert.Contains(t, authState(t, log, file), "accepted")
	assert.Equal(t, "ssh-ed25519 "+fp(filePub)+" ("+file+")", log.accepted())
}

func TestAuthAgent(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	file := filepath.Join(dir, "id_ed25519")
	pub := authKeygen(t, file, "ed25519", "")
	authAuthorize(t, srv, pub)
	sock := authAgent(t, file)
	t.Setenv("SSH_AUTH_SOCK", sock) // AgentSocket "" uses it

	methods, log, closeFn, err := authMethods(context.Background(), authConfig{User: srv.User})
	require.NoError(t, err)
	require.NoError(t, authLogin(t, srv, methods, log))
	open := authOpenFiles(t)
	closeFn()
	assert.Less(t, authOpenFiles(t), open, "closeFn closes the agent connection")
	closeFn() // twice is fine

	assert.Equal(t, []string{"agent"}, authOrder(log), "the file's key is the agent's: offered once")
	assert.Contains(t, authState(t, log, file), "offered through the agent")
	assert.Equal(t, "ssh-ed25519 "+fp(pub)+" (agent)", log.accepted())
}

func TestAuthUnreachableAgent(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	file := filepath.Join(dir, "id_ed25519")
	authAuthorize(t, srv, authKeygen(t, file, "ed25519", ""))
	sock := filepath.Join(dir, "no-agent-here")

	methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: sock})
	require.NoError(t, authLogin(t, srv, methods, log))
	assert.Contains(t, log.String(), "agent "+sock+" unreachable")
	assert.Contains(t, log.accepted(), file)
}

func TestAuthIdentitiesOnly(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	good := filepath.Join(dir, "good")
	goodPub := authKeygen(t, good, "ed25519", "")
	authAuthorize(t, srv, goodPub)
	other := filepath.Join(dir, "other")
	otherPub := authKeygen(t, other, "ed25519", "")
	sock := authAgent(t, good, other)

	t.Run("only the identity file's agent key", func(t *testing.T) {
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: sock,
			IdentityFiles: []string{other}, IdentitiesOnly: true})
		err := authLogin(t, srv, methods, log)
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.Equal(t, []string{"agent"}, authOrder(log))
		assert.Contains(t, err.Error(), fp(otherPub)+" (agent): refused")
		assert.Contains(t, err.Error(), fp(goodPub)+" (agent): not an IdentityFile's key (IdentitiesOnly)")
	})
	t.Run("without IdentitiesOnly every agent key", func(t *testing.T) {
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: sock, IdentityFiles: []string{other}})
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.Equal(t, "ssh-ed25519 "+fp(goodPub)+" (agent)", log.accepted())
	})
	t.Run("a .pub alone selects the agent key", func(t *testing.T) {
		pubOnly := filepath.Join(t.TempDir(), "key")
		data, err := os.ReadFile(good + ".pub")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(pubOnly+".pub", data, 0o600))
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: sock,
			IdentityFiles: []string{pubOnly}, IdentitiesOnly: true})
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.Equal(t, []string{"agent"}, authOrder(log))
		assert.Equal(t, "ssh-ed25519 "+fp(goodPub)+" (agent)", log.accepted())
	})
}

func TestAuthEncryptedKeyLazy(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	file := filepath.Join(dir, "id_ed25519")
	pub := authKeygen(t, file, "ed25519", "correct horse")
	var asked atomic.Int32
	passphrase := func(f string) ([]byte, error) {
		asked.Add(1)
		assert.Equal(t, file, f)
		return []byte("correct horse"), nil
	}
	cfg := authConfig{User: srv.User, AgentSocket: "none", Passphrase: passphrase}

	t.Run("not asked when the server refuses the key", func(t *testing.T) {
		methods, log := authSetup(t, cfg)
		err := authLogin(t, srv, methods, log)
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.Zero(t, asked.Load(), "passphrase asked for a key the server refuses")
		assert.Contains(t, err.Error(), fp(pub)+" ("+file+"): refused")
	})
	authAuthorize(t, srv, pub)
	t.Run("asked once when the server accepts it", func(t *testing.T) {
		methods, log := authSetup(t, cfg)
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.EqualValues(t, 1, asked.Load())
		assert.Equal(t, "ssh-ed25519 "+fp(pub)+" ("+file+")", log.accepted())
	})
	t.Run("without the .pub file", func(t *testing.T) {
		// The OpenSSH format holds the public key in clear.
		require.NoError(t, os.Remove(file+".pub"))
		asked.Store(0)
		methods, log := authSetup(t, cfg)
		assert.Zero(t, asked.Load(), "asked before the handshake")
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.EqualValues(t, 1, asked.Load())
	})
}

func TestAuthEncryptedPEMKey(t *testing.T) {
	// A PEM key hides its public key: without a .pub, the passphrase is
	// needed before the handshake.
	srv := opensshd.Start(t)
	dir := authHome(t)
	file := filepath.Join(dir, "id_rsa")
	pub := authKeygen(t, file, "rsa", "pem pass", "-m", "PEM", "-b", "2048")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(data), "ENCRYPTED")
	require.NoError(t, os.Remove(file+".pub"))
	authAuthorize(t, srv, pub)

	asked := 0
	methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none",
		Passphrase: func(string) ([]byte, error) { asked++; return []byte("pem pass"), nil }})
	assert.Equal(t, 1, asked)
	require.NoError(t, authLogin(t, srv, methods, log))
	assert.Equal(t, "ssh-rsa "+fp(pub)+" ("+file+")", log.accepted())

	_, _, _, err = authMethods(context.Background(), authConfig{User: srv.User, AgentSocket: "none",
		Passphrase: func(string) ([]byte, error) { return []byte("not-the-pem-pass"), nil }})
	require.ErrorIs(t, err, x509.IncorrectPasswordError)
	assert.Contains(t, err.Error(), file)
	assert.NotContains(t, err.Error(), "not-the-pem-pass")

	methods, log = authSetup(t, authConfig{User: srv.User, AgentSocket: "none",
		Passphrase: func(string) ([]byte, error) { return nil, nil }})
	assert.Empty(t, methods)
	assert.Contains(t, authState(t, log, file), "encrypted, no passphrase given")
}

func TestAuthWrongPassphrase(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)
	file := filepath.Join(dir, "id_ed25519")
	authAuthorize(t, srv, authKeygen(t, file, "ed25519", "right-one"))

	methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none",
		Passphrase: func(string) ([]byte, error) { return []byte("wrong-guess"), nil }})
	err := authLogin(t, srv, methods, log)
	require.ErrorIs(t, err, x509.IncorrectPasswordError)
	assert.Contains(t, err.Error(), file)
	assert.NotErrorIs(t, err, ErrAuthFailed, "a wrong passphrase is not the server refusing")
	for _, s := range []string{err.Error(), log.String()} {
		assert.NotContains(t, s, "wrong-guess")
		assert.NotContains(t, s, "right-one")
	}
	assert.Contains(t, authState(t, log, file), "wrong passphrase")
}

func TestAuthCertificate(t *testing.T) {
	dir := authHome(t)
	ca := filepath.Join(dir, "ca")
	authKeygen(t, ca, "ed25519", "")
	srv := opensshd.Start(t, "TrustedUserCAKeys "+ca+".pub")
	sign := func(t *testing.T, key string) {
		t.Helper()
		out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "test-id", "-n", srv.User, key+".pub").CombinedOutput()
		require.NoError(t, err, "ssh-keygen -s: %s", out)
	}
	// None of these keys is in authorized_keys: only their certificates log in.

	t.Run("cert.pub beside the key, offered first", func(t *testing.T) {
		file := filepath.Join(dir, "id_ed25519")
		pub := authKeygen(t, file, "ed25519", "")
		sign(t, file)
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none"})
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.Equal(t, []string{file + "-cert.pub", file}, authOrder(log))
		assert.Equal(t, ssh.CertAlgoED25519v01+" "+fp(pub)+" ("+file+"-cert.pub)", log.accepted())
		assert.Contains(t, authState(t, log, file), "not offered")
	})
	t.Run("CertificateFile and an encrypted key", func(t *testing.T) {
		file := filepath.Join(dir, "enc")
		authKeygen(t, file, "ed25519", "pass")
		sign(t, file)
		certFile := filepath.Join(dir, "elsewhere-cert.pub")
		require.NoError(t, os.Rename(file+"-cert.pub", certFile))
		asked := 0
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none",
			IdentityFiles: []string{file}, CertificateFiles: []string{certFile},
			Passphrase: func(string) ([]byte, error) { asked++; return []byte("pass"), nil }})
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.Equal(t, 1, asked)
		assert.Contains(t, log.accepted(), "("+certFile+")")
	})
	t.Run("CertificateFile for a key in the agent", func(t *testing.T) {
		file := filepath.Join(dir, "agentkey")
		authKeygen(t, file, "ed25519", "")
		sock := authAgent(t, file) // before signing: ssh-add would add the certificate too
		sign(t, file)
		certFile := filepath.Join(dir, "agent-cert.pub")
		require.NoError(t, os.Rename(file+"-cert.pub", certFile))
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: sock,
			IdentityFiles: []string{}, CertificateFiles: []string{certFile}})
		require.NoError(t, authLogin(t, srv, methods, log))
		assert.Equal(t, []string{certFile + " (key in agent)", "agent"}, authOrder(log))
		assert.Contains(t, log.accepted(), "("+certFile+" (key in agent))")
	})
}

func TestAuthRSAKeepsSHA2(t *testing.T) {
	// OpenSSH refuses ssh-rsa (SHA-1) signatures by default: the logging
	// wrapper must keep the signer's rsa-sha2 algorithms.
	srv := opensshd.Start(t)
	authHome(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	authAuthorize(t, srv, signer.PublicKey())
	only256, err := ssh.NewSignerWithAlgorithms(signer.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSASHA256})
	require.NoError(t, err)

	for name, s := range map[string]ssh.Signer{"AlgorithmSigner": signer, "MultiAlgorithmSigner": only256} {
		t.Run(name, func(t *testing.T) {
			methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none", Signers: []ssh.Signer{s}})
			require.NoError(t, authLogin(t, srv, methods, log))
			assert.Contains(t, log.accepted(), "(code)")
		})
	}
	w := (&authLog{}).wrap(only256, "code")
	require.Implements(t, (*ssh.MultiAlgorithmSigner)(nil), w)
	assert.Equal(t, []string{ssh.KeyAlgoRSASHA256}, w.(ssh.MultiAlgorithmSigner).Algorithms())
}

func TestAuthNoUsableKey(t *testing.T) {
	srv := opensshd.Start(t)
	dir := authHome(t)

	t.Run("nothing to offer", func(t *testing.T) {
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none"})
		assert.Empty(t, methods)
		err := authLogin(t, srv, methods, log)
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.Contains(t, err.Error(), "no keys")
		assert.Contains(t, err.Error(), `as "`+srv.User+`"`)
	})
	t.Run("keys the server refuses", func(t *testing.T) {
		file := filepath.Join(dir, "id_ed25519")
		pub := authKeygen(t, file, "ed25519", "")
		enc := filepath.Join(dir, "id_ecdsa")
		authKeygen(t, enc, "ecdsa", "x")
		missing := filepath.Join(dir, "missing")
		methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none",
			IdentityFiles: []string{missing, enc, file}})
		err := authLogin(t, srv, methods, log)
		require.ErrorIs(t, err, ErrAuthFailed)
		msg := err.Error()
		assert.Contains(t, msg, "ssh-ed25519 "+fp(pub)+" ("+file+"): refused")
		assert.Contains(t, msg, "skipped "+enc+": encrypted, no passphrase callback")
		assert.Contains(t, msg, "skipped "+missing+": no such file")
		assert.Contains(t, msg, "unable to authenticate", "x/crypto's error is kept")
		assert.Empty(t, log.accepted())
	})
}

func TestAuthTooManyKeys(t *testing.T) {
	srv := opensshd.Start(t, "MaxAuthTries 2")
	dir := authHome(t)
	var files []string
	for _, name := range []string{"a", "b", "c", "d"} {
		files = append(files, filepath.Join(dir, name))
		authKeygen(t, files[len(files)-1], "ed25519", "")
	}
	methods, log := authSetup(t, authConfig{User: srv.User, AgentSocket: "none", IdentityFiles: files})
	err := authLogin(t, srv, methods, log)
	require.ErrorIs(t, err, ErrAuthFailed)
	assert.Contains(t, err.Error(), "MaxAuthTries")
	assert.Contains(t, authState(t, log, files[3]), "not offered")
}

func TestAuthErrorUnchanged(t *testing.T) {
	err := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	assert.Same(t, err, authError(err, &authLog{}))
	assert.NoError(t, authError(nil, nil))
	wrapped := authError(errors.New("ssh: handshake failed: ssh: disconnect, reason 2: Too many authentication failures"), nil)
	assert.ErrorIs(t, wrapped, ErrAuthFailed)
	assert.Contains(t, wrapped.Error(), "Too many authentication failures")
}

// authPasswordServer is an in-process x/crypto server accepting only the
// password "hunter2" and no key, recording the methods clients try.
func authPasswordServer(t *testing.T) (addr string, methods func() []string) {
	t.Helper()
	var mu sync.Mutex
	var tried []string
	record := func(m string) {
		mu.Lock()
		defer mu.Unlock()
		tried = append(tried, m)
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			record("publickey")
			return nil, errors.New("no")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			record("password")
			if string(pw) == "hunter2" {
				return nil, nil
			}
			return nil, errors.New("no")
		},
	}
	config.AddHostKey(newEd25519Signer(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if sc, chans, reqs, err := ssh.NewServerConn(c, config); err == nil {
					go ssh.DiscardRequests(reqs)
					for ch := range chans {
						ch.Reject(ssh.Prohibited, "no")
					}
					sc.Close()
				}
			})
		}
	})
	return l.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), tried...)
	}
}

func TestAuthPassword(t *testing.T) {
	authHome(t)
	login := func(t *testing.T, addr, password string) (*authLog, error) {
		methods, log := authSetup(t, authConfig{User: "u", AgentSocket: "none",
			Signers:  []ssh.Signer{newEd25519Signer(t)},
			Password: func() (string, error) { return password, nil }})
		client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "u", Auth: methods,
			HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if err != nil {
			return log, authError(err, log)
		}
		return log, client.Close()
	}

	t.Run("after the keys", func(t *testing.T) {
		addr, tried := authPasswordServer(t)
		log, err := login(t, addr, "hunter2")
		require.NoError(t, err)
		assert.Equal(t, []string{"publickey", "password"}, tried())
		assert.Equal(t, "password", log.accepted())
		assert.Contains(t, log.String(), "(code): refused; password: sent")
		assert.NotContains(t, log.String(), "hunter2")
	})
	t.Run("wrong password", func(t *testing.T) {
		addr, _ := authPasswordServer(t)
		_, err := login(t, addr, "bad-password-123")
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.Contains(t, err.Error(), "password: sent")
		assert.NotContains(t, err.Error(), "bad-password-123")
	})
	t.Run("callback error", func(t *testing.T) {
		addr, _ := authPasswordServer(t)
		cancelled := errors.New("prompt cancelled")
		methods, log := authSetup(t, authConfig{User: "u", AgentSocket: "none",
			Password: func() (string, error) { return "", cancelled }})
		_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "u", Auth: methods,
			HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		require.ErrorIs(t, err, cancelled, "the login ends with the callback's error")
		assert.Contains(t, log.String(), "password: no password: prompt cancelled")
		assert.Empty(t, log.accepted())
	})
}

func TestAuthLogNil(t *testing.T) {
	var log *authLog
	assert.Equal(t, "nothing", log.String())
	assert.Empty(t, log.accepted())
}

// authMethodsServer is an in-process x/crypto server offering publickey
// (refusing every key), keyboard-interactive (accepting the code "123")
// and password (accepting "hunter2"), recording each attempt's method.
func authMethodsServer(t *testing.T) (addr string, tried func() []string) {
	t.Helper()
	var mu sync.Mutex
	var log []string
	record := func(m string) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, m)
	}
	config := &ssh.ServerConfig{
		MaxAuthTries: 20,
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			record("publickey")
			return nil, errors.New("no")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			record("password")
			if string(pw) == "hunter2" {
				return nil, nil
			}
			return nil, errors.New("no")
		},
		KeyboardInteractiveCallback: func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			record("keyboard-interactive")
			ans, err := client("", "", []string{"Code: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if len(ans) == 1 && ans[0] == "123" {
				return nil, nil
			}
			return nil, errors.New("no")
		},
	}
	config.AddHostKey(newEd25519Signer(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if sc, chans, reqs, err := ssh.NewServerConn(c, config); err == nil {
					go ssh.DiscardRequests(reqs)
					for ch := range chans {
						ch.Reject(ssh.Prohibited, "no")
					}
					sc.Close()
				}
			})
		}
	})
	return l.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), log...)
	}
}

// TestAuthMethodOrder: OpenSSH's order by default (publickey,
// keyboard-interactive, password), PreferredAuthentications' otherwise
// (names not implemented skipped, methods not named not used), each of
// password and keyboard-interactive tried NumberOfPasswordPrompts times.
func TestAuthMethodOrder(t *testing.T) {
	authHome(t)
	type counts struct{ kbd, pw atomic.Int32 }
	login := func(t *testing.T, cfg authConfig, code, password string) ([]string, *counts, *authLog, error) {
		addr, tried := authMethodsServer(t)
		n := &counts{}
		cfg.User, cfg.AgentSocket = "u", "none"
		cfg.Signers = []ssh.Signer{newEd25519Signer(t)}
		cfg.KeyboardInteractive = func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			n.kbd.Add(1)
			return []string{code}, nil
		}
		cfg.Password = func() (string, error) {
			n.pw.Add(1)
			return password, nil
		}
		methods, log := authSetup(t, cfg)
		client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "u", Auth: methods,
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err == nil {
			client.Close()
		}
		return tried(), n, log, authError(err, log)
	}

	t.Run("default order, code accepted", func(t *testing.T) {
		tried, n, log, err := login(t, authConfig{}, "123", "hunter2")
		require.NoError(t, err)
		assert.Equal(t, []string{"publickey", "keyboard-interactive"}, tried)
		assert.EqualValues(t, 1, n.kbd.Load())
		assert.EqualValues(t, 0, n.pw.Load())
		assert.Equal(t, "keyboard-interactive", log.accepted())
	})
	t.Run("default order, three wrong codes then password", func(t *testing.T) {
		tried, n, log, err := login(t, authConfig{}, "bad-code", "hunter2")
		require.NoError(t, err)
		assert.Equal(t, []string{"publickey", "keyboard-interactive", "keyboard-interactive", "keyboard-interactive", "password"}, tried)
		assert.EqualValues(t, 3, n.kbd.Load())
		assert.Equal(t, "password", log.accepted())
		assert.NotContains(t, log.String(), "bad-code")
		assert.NotContains(t, log.String(), "hunter2")
	})
	t.Run("preferred: password first, unknown names skipped", func(t *testing.T) {
		cfg := authConfig{PreferredAuthentications: splitPreferredAuthentications("gssapi-with-mic, password,hostbased,keyboard-interactive")}
		tried, n, _, err := login(t, cfg, "123", "wrong-pw")
		require.NoError(t, err)
		assert.Equal(t, []string{"password", "password", "password", "keyboard-interactive"}, tried)
		assert.EqualValues(t, 3, n.pw.Load())
	})
	t.Run("preferred: a method not named is not used", func(t *testing.T) {
		cfg := authConfig{PreferredAuthentications: []string{"publickey", "password"}}
		tried, n, log, err := login(t, cfg, "123", "wrong-pw")
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.NotContains(t, tried, "keyboard-interactive")
		assert.EqualValues(t, 0, n.kbd.Load())
		assert.Contains(t, log.String(), "keyboard-interactive not used: not in PreferredAuthentications")
	})
	t.Run("NumberOfPasswordPrompts 1", func(t *testing.T) {
		tried, n, _, err := login(t, authConfig{NumberOfPasswordPrompts: 1}, "bad-code", "wrong-pw")
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.Equal(t, []string{"publickey", "keyboard-interactive", "password"}, tried)
		assert.EqualValues(t, 1, n.kbd.Load())
		assert.EqualValues(t, 1, n.pw.Load())
	})
	t.Run("NumberOfPasswordPrompts 0 (given as -1)", func(t *testing.T) {
		tried, n, log, err := login(t, authConfig{NumberOfPasswordPrompts: -1}, "123", "hunter2")
		require.ErrorIs(t, err, ErrAuthFailed)
		assert.Equal(t, []string{"publickey"}, tried)
		assert.EqualValues(t, 0, n.kbd.Load()+n.pw.Load())
		assert.Contains(t, log.String(), "NumberOfPasswordPrompts is 0")
	})
	t.Run("the hook gives the defaults", func(t *testing.T) {
		preferred, prompts := hopAuthPreferences(&hop{})
		assert.Nil(t, preferred)
		assert.Zero(t, prompts)
		assert.Nil(t, splitPreferredAuthentications(""))
	})
}

// A keyboard-interactive round with no questions and no text (sshd with
// PAM sends one when PAM is done) is answered without the callback; one
// with text reaches it, with the hop's name and user.
func TestChallengeFuncEmptyRound(t *testing.T) {
	var got []Challenge
	cb := challengeFunc(context.Background(), func(_ context.Context, c Challenge) ([]string, error) {
		got = append(got, c)
		return nil, nil
	}, "bastion", "alice")
	ans, err := cb("", "", nil, nil)
	require.NoError(t, err)
	assert.Empty(t, ans)
	assert.Empty(t, got, "the callback was called for an empty round")
	_, err = cb("", "Approve the push on your phone", nil, nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, Challenge{Host: "bastion", User: "alice", Instruction: "Approve the push on your phone"}, got[0])
}

// Key files are read up to 1 MiB, as OpenSSH's sshkey_load_file reads
// them: an identity, its .pub or a certificate that names a device such as
// /dev/zero is skipped, with the reason, instead of read until memory runs
// out.
func TestKeyFilesBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero on this system")
	}
	log := &authLog{}
	done := make(chan *identity, 1)
	go func() { done <- loadIdentity("/dev/zero", false, log) }()
	select {
	case id := <-done:
		if id != nil {
			t.Fatalf("an identity from /dev/zero: %+v", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("loadIdentity(/dev/zero) still reading after 20 s")
	}
	if got := authState(t, log, "/dev/zero"); !strings.Contains(got, "larger than 1 MiB") {
		t.Errorf("the log says %q", got)
	}
	if pub := readPublicKey("/dev/zero"); pub != nil {
		t.Errorf("a public key from /dev/zero: %v", pub)
	}
	certs := loadCertificates([]string{"/dev/zero"}, nil, log)
	if len(certs) != 0 {
		t.Errorf("certificates from /dev/zero: %v", certs)
	}
	// A key file of exactly 1 MiB is read: the bound is not below it.
	big := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readKeyFile(big); err != nil || len(data) != 1<<20 {
		t.Errorf("a 1 MiB file: %d bytes, %v", len(data), err)
	}
}
