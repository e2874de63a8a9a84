package integration

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sshdial/sshdial/internal/testproc"
)

// The database servers run as throwaway processes on 127.0.0.1, with data
// in a temporary directory. internal/testproc stops them when the test
// ends, and on Linux also when the test binary dies. The project's test
// command installs their Debian packages.

// asUser returns the options that run a command as the named system user
// when we are root (the databases refuse to run as root), and as ourselves
// otherwise.
func asUser(name string) testproc.Options {
	if os.Geteuid() != 0 {
		return testproc.Options{}
	}
	return testproc.Options{User: name}
}

// startServer starts argv and waits until it accepts connections on addr.
// The server is stopped when the test ends.
func startServer(t testing.TB, opts testproc.Options, addr string, argv ...string) {
	t.Helper()
	p := testproc.Start(t, opts, argv[0], argv[1:]...)
	if err := p.WaitListening(addr, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

// run runs argv to completion, for at most two minutes, and fails the test
// with its output if it fails.
func run(t testing.TB, opts testproc.Options, argv ...string) {
	t.Helper()
	p, err := testproc.Launch(opts, argv[0], argv[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	select {
	case <-p.Exited():
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s still runs after 2 minutes:\n%s", argv[0], p.Output())
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", argv[0], err, p.Output())
	}
}

// dataDir makes a temporary directory, owned by the system user when we
// are root.
func dataDir(t testing.TB, owner string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sshdial-"+owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup(owner)
		if err != nil {
			t.Fatalf("system user %s: %v (is the server package installed?)", owner, err)
		}
		uid, err := strconv.Atoi(u.Uid)
		if err != nil {
			t.Fatal(err)
		}
		gid, err := strconv.Atoi(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loopback returns 127.0.0.1 and a port that was free a moment ago.
func loopback(t testing.TB) (addr string, port string) {
	p, err := testproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	port = strconv.Itoa(p)
	return net.JoinHostPort("127.0.0.1", port), port
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
	run(t, asUser("postgres"), initdb, "--no-sync", "--auth=trust", "--username=postgres", "-D", data)
	addr, port := loopback(t)
	startServer(t, asUser("postgres"), addr, postgres, "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+port,
		"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "max_connections=50")
	return addr
}

// startRedis starts Redis with DEBUG enabled and returns its address.
func startRedis(t testing.TB) string {
	t.Helper()
	bin := findBinary(t, "redis-server")
	addr, port := loopback(t)
	dir := dataDir(t, "redis")
	startServer(t, asUser("redis"), addr, bin, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--enable-debug-command", "yes")
	return addr
}

// startMariaDB starts MariaDB without grant checks and returns its address.
// As root, mariadb-install-db runs as root and gives the data to mysql;
// the server then runs as mysql from the start, because a process that
// changes its own user (mariadbd --user as root) loses its parent-death
// signal.
func startMariaDB(t testing.TB) string {
	t.Helper()
	installDB := findBinary(t, "mariadb-install-db", "mysql_install_db")
	server := findBinary(t, "mariadbd", "mysqld")
	dir := dataDir(t, "mysql")
	data := filepath.Join(dir, "data")
	run(t, testproc.Options{}, installDB, "--no-defaults", "--user=mysql", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db")
	addr, port := loopback(t)
	startServer(t, asUser("mysql"), addr, server, "--no-defaults", "--user=mysql", "--datadir="+data,
		"--port="+port, "--bind-address=127.0.0.1", "--socket="+filepath.Join(dir, "sock"),
		"--pid-file="+filepath.Join(dir, "pid"), "--skip-grant-tables", "--skip-log-bin",
		"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M")
	return addr
}

// startNATS starts nats-server with its defaults and returns its address.
func startNATS(t testing.TB) string {
	t.Helper()
	bin := findBinary(t, "nats-server")
	addr, port := loopback(t)
	startServer(t, testproc.Options{}, addr, bin, "-a", "127.0.0.1", "-p", port)
	return addr
}
