package integration

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/portwait"
	"github.com/sshdial/sshdial/internal/syncbuf"
)

// The database servers run as throwaway processes on 127.0.0.1, with data
// in a temporary directory, and are stopped by PID when the test ends. The
// project's test command installs their Debian packages.

// process is a server started for a test.
type process struct {
	cmd    *exec.Cmd
	output *syncbuf.Buffer
	exited chan struct{}
}

// startProcess runs argv, as the named system user when we are root (the
// databases refuse to run as root), in its own process group.
func startProcess(t testing.TB, runAs string, argv ...string) *process {
	t.Helper()
	p := &process{output: &syncbuf.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cred := credential(t, runAs); cred != nil {
		p.cmd.SysProcAttr.Credential = cred
	}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", argv[0], err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", argv[0], p.output.String())
		}
	})
	return p
}

// waitListening waits until addr accepts TCP connections.
func (p *process) waitListening(t testing.TB, addr string) {
	t.Helper()
	if err := portwait.Wait(addr, 60*time.Second, p.exited); err != nil {
		t.Fatalf("%s: %v: %s", p.cmd.Path, err, p.output.String())
	}
}

func credential(t testing.TB, name string) *syscall.Credential {
	if name == "" || os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("system user %s: %v (is the server package installed?)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// dataDir makes a temporary directory owned by the system user.
func dataDir(t testing.TB, owner string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sshdial-"+owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred := credential(t, owner); cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t testing.TB) int {
	port, err := opensshd.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func findBinary(t testing.TB, names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		if matches, _ := filepath.Glob(n); len(matches) > 0 {
			return matches[len(matches)-1]
		}
	}
	t.Fatalf("none of %v is installed (the project's test command installs them)", names)
	return ""
}

// startPostgres starts PostgreSQL with trust authentication for user
// "postgres" and returns its 127.0.0.1 address.
func startPostgres(t testing.TB) string {
	t.Helper()
	initdb := findBinary(t, "initdb", "/usr/lib/postgresql/*/bin/initdb")
	postgres := findBinary(t, "/usr/lib/postgresql/*/bin/postgres")
	dir := dataDir(t, "postgres")
	data := filepath.Join(dir, "data")
	init := exec.Command(initdb, "--no-sync", "--auth=trust", "--username=postgres", "-D", data)
	init.SysProcAttr = &syscall.SysProcAttr{Credential: credential(t, "postgres")}
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	p := startProcess(t, "postgres", postgres, "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "max_connections=50")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.waitListening(t, addr)
	return addr
}

// startRedis starts Redis with DEBUG enabled and returns its address.
func startRedis(t testing.TB) string {
	t.Helper()
	bin := findBinary(t, "redis-server")
	port := freePort(t)
	dir := dataDir(t, "redis")
	p := startProcess(t, "redis", bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--enable-debug-command", "yes")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.waitListening(t, addr)
	return addr
}

// startMariaDB starts MariaDB without grant checks and returns its address.
func startMariaDB(t testing.TB) string {
	t.Helper()
	installDB := findBinary(t, "mariadb-install-db", "mysql_install_db")
	server := findBinary(t, "mariadbd", "mysqld")
	dir := dataDir(t, "mysql")
	data := filepath.Join(dir, "data")
	install := exec.Command(installDB, "--no-defaults", "--user=mysql", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	p := startProcess(t, "", server, "--no-defaults", "--user=mysql", "--datadir="+data,
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket="+filepath.Join(dir, "sock"),
		"--pid-file="+filepath.Join(dir, "pid"), "--skip-grant-tables", "--skip-log-bin",
		"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p.waitListening(t, addr)
	return addr
}
