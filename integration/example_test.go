package integration

// These examples compile with every test run; they need a real SSH server
// and databases, so they have no Output to check. consumers_test.go runs the
// same code against real servers.

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/lib/pq"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
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

// pgx: set DialFunc, and LookupFunc so that pgx does not look the host up
// itself (it does by default, and fails with "hostname resolving error" for
// a name only the SSH server knows). Cancellation works: pgx redials
// RemoteAddr through the same Dialer to send its cancel request.
func Example_pgx() {
	cfg, err := pgx.ParseConfig("postgres://app@db.internal:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	d := sshdial.New(sshClient())
	cfg.LookupFunc = d.LookupHost // db.internal is resolved by the SSH server
	cfg.DialFunc = d.DialContext
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

// gRPC: a context dialer with "passthrough:///" so the address reaches the
// SSH server unresolved. Without a scheme, or with dns:///, grpc.NewClient
// resolves the name itself and fails for a name only the SSH server knows.
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

// NATS: a Dialer has nats.go's CustomDialer method, Dial(network, address).
// nats.go calls it without a context, so on a dead link only the Dialer's
// keepalive ends it (Connect's Dialers have one by default). SkipHostLookup
// stops nats.go from resolving the name itself first.
func Example_nats() {
	d := sshdial.New(sshClient(), sshdial.WithKeepalive(15*time.Second, 15*time.Second))
	nc, err := nats.Connect("nats://queue.internal:4222", nats.SetCustomDialer(d), nats.SkipHostLookup())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	fmt.Println(nc.Publish("greetings", []byte("hello")))
}

// A Docker-style HTTP API on a unix socket of the remote machine, through
// direct-streamlocal@openssh.com. The host in the URL is only a label.
func Example_dockerSocket() {
	d := sshdial.New(sshClient())
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", "/var/run/docker.sock")
		},
	}}
	resp, err := client.Get("http://docker/version")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
}

// An ssh:// URL in HTTP_PROXY does not work: net/http speaks HTTP to every
// proxy but SOCKS5, so it sends its request to sshd and reads sshd's banner
// as the reply ("malformed HTTP status code"). Put the Dialer in the
// Transport instead; from a URL, through golang.org/x/net/proxy.
func Example_proxyURLForHTTP() {
	proxy.RegisterDialerType("ssh", sshdial.FromURL)
	u, _ := url.Parse(os.Getenv("SSH_PROXY")) // ssh://deploy@bastion.example.com:22
	pd, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: pd.(proxy.ContextDialer).DialContext,
	}}
	resp, err := client.Get("http://intranet.internal/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
}

// Kafka with segmentio/kafka-go: the DialContext shape, for the Dialer
// (Conn, Reader) and for the Transport (Writer, Client). Broker names
// (bootstrap and those the cluster advertises) are passed to the dial
// function unresolved, as long as no Resolver is set.
func Example_kafka() {
	d := sshdial.New(sshClient())
	w := &kafka.Writer{
		Addr:      kafka.TCP("kafka.internal:9092"),
		Topic:     "events",
		Transport: &kafka.Transport{Dial: d.DialContext},
	}
	defer w.Close()
	fmt.Println(w.WriteMessages(context.Background(), kafka.Message{Value: []byte("hello")}))

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{"kafka.internal:9092"},
		Topic:   "events",
		Dialer:  &kafka.Dialer{DialFunc: d.DialContext, Timeout: 10 * time.Second},
	})
	defer r.Close()
}
