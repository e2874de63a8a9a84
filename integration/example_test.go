package integration

// These examples compile with every test run; they need a real SSH server
// and databases, so they have no Output to check. consumers_test.go runs the
// same code against real servers.

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/url"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
	"github.com/sshdial/sshdial"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/net/proxy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// sshClient connects to a bastion the usual x/crypto way.
func sshClient() *ssh.Client {
	hostKeys, err := knownhosts.New(os.ExpandEnv("$HOME/.ssh/known_hosts"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := os.ReadFile(os.ExpandEnv("$HOME/.ssh/id_ed25519"))
	if err != nil {
		log.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		log.Fatal(err)
	}
	client, err := ssh.Dial("tcp", "bastion.example.com:22", &ssh.ClientConfig{
		User:            "deploy",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
	})
	if err != nil {
		log.Fatal(err)
	}
	return client
}

// pgx: set DialFunc. Cancellation works: pgx redials RemoteAddr through the
// same Dialer to send its cancel request.
func Example_pgx() {
	cfg, err := pgx.ParseConfig("postgres://app@db.internal:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	cfg.DialFunc = sshdial.New(sshClient()).DialContext
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(context.Background())
	var now time.Time
	err = conn.QueryRow(context.Background(), "select now()").Scan(&now)
	fmt.Println(now, err)
}

// database/sql with lib/pq: a Dialer is a pq.Dialer.
func Example_libpq() {
	connector, err := pq.NewConnector("host=db.internal user=app dbname=app connect_timeout=5")
	if err != nil {
		log.Fatal(err)
	}
	connector.Dialer(sshdial.New(sshClient()))
	db := sql.OpenDB(connector)
	defer db.Close()
	fmt.Println(db.Ping())
}

// database/sql with go-sql-driver/mysql: register a network name.
func Example_mysql() {
	mysql.RegisterDialContext("ssh", sshdial.New(sshClient()).DialTCPContext)
	db, err := sql.Open("mysql", "app@ssh(db.internal:3306)/app?readTimeout=5s&writeTimeout=5s")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fmt.Println(db.Ping())
}

// go-redis: Options.Dialer takes DialContext as it is.
func Example_redis() {
	rdb := redis.NewClient(&redis.Options{
		Addr:   "cache.internal:6379",
		Dialer: sshdial.New(sshClient()).DialContext,
	})
	defer rdb.Close()
	fmt.Println(rdb.Ping(context.Background()).Err())
}

// gRPC: a context dialer with "passthrough" so the address reaches the SSH
// server unresolved.
func Example_grpc() {
	cc, err := grpc.NewClient("passthrough:///api.internal:443",
		grpc.WithContextDialer(sshdial.New(sshClient()).DialTCPContext),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
}

// x/net/proxy: register the ssh scheme once, then use ssh:// URLs.
func Example_proxy() {
	proxy.RegisterDialerType("ssh", sshdial.FromURL)
	u, _ := url.Parse("ssh://deploy@bastion.example.com:22?identity=/home/deploy/.ssh/id_ed25519")
	d, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := d.Dial("tcp", "db.internal:5432")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}
