// Package integration runs the clients people already use, unchanged but for
// their dial hook, against real servers through a real OpenSSH sshd and
// through sshtest. It is its own module so that the library's go.mod stays
// small.
package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"
	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives as long as a *sql.DB that
		// the driver keeps registered; the DBs here are closed, this is
		// only its exit racing the check.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

// tunnel is an SSH server kind with a client connected to it.
type tunnel struct {
	name   string
	client *ssh.Client
	stall  func() (resume func()) // nil when the server cannot be stalled
}

// tunnels returns a client through sshtest and one through OpenSSH, both
// closed when the test ends. Behind both, serverOnlyNames resolve to
// 127.0.0.1 and the test client cannot resolve them (names_test.go).
func tunnels(t *testing.T) []tunnel {
	srv, _ := namingServer(t)
	c, err := srv.Dial()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	openssh := startNamedSSHD(t)
	return []tunnel{
		{"sshtest", c, func() func() { srv.Stall(); return srv.Resume }},
		{"openssh", openssh.Dial(t), nil},
	}
}

func forEachTunnel(t *testing.T, f func(t *testing.T, tn tunnel)) {
	for _, tn := range tunnels(t) {
		t.Run(tn.name, func(t *testing.T) { f(t, tn) })
	}
}

// pgSleepers counts the sessions running pg_sleep, through a direct
// connection.
func pgSleepers(addr string) (int, error) {
	conn, err := pgx.Connect(context.Background(), "postgres://postgres@"+addr+"/postgres")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(),
		"select count(*) from pg_stat_activity where query like 'select pg_sleep%' and state = 'active'").Scan(&n)
	return n, err
}

// requireNoPgSleepers waits until no session runs pg_sleep. The check runs
// on a goroutine of Eventually's, so it reports through assert.CollectT.
func requireNoPgSleepers(t *testing.T, addr string, msgAndArgs ...any) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := pgSleepers(addr)
		assert.NoError(c, err)
		assert.Zero(c, n, "sessions running pg_sleep")
	}, 2*time.Second, 20*time.Millisecond, msgAndArgs...)
}

func TestPgx(t *testing.T) {
	pg := startPostgres(t)
	forEachTunnel(t, func(t *testing.T, tn tunnel) {
		ctx := context.Background()
		d := sshdial.New(tn.client)
		cfg, err := pgx.ParseConfig("postgres://postgres@" + behind("db.internal", pg) + "/postgres?connect_timeout=5")
		require.NoError(t, err)
		cfg.DialFunc = d.DialContext

		// pgx looks the host up itself before it dials: the name must be
		// left for the SSH server.
		_, err = pgx.ConnectConfig(ctx, cfg)
		require.ErrorContains(t, err, "hostname resolving error", "pgx resolves names locally without a LookupFunc")

		cfg.LookupFunc = d.LookupHost
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		defer conn.Close(ctx)

		var two int
		require.NoError(t, conn.QueryRow(ctx, "select 1 + 1").Scan(&two))
		require.Equal(t, 2, two)

		// Cancellation: pgx sets a deadline and sends a cancel request to
		// RemoteAddr through the same dial hook.
		qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		took := testutil.Within(t, 5*time.Second, "cancelled pg_sleep", func() {
			_, err = conn.Exec(qctx, "select pg_sleep(5)")
		})
		require.Error(t, err)
		require.Less(t, took, time.Second, "cancel took %v", took)
		requireNoPgSleepers(t, pg, "the query is cancelled on the server, not left running")

		if tn.stall == nil {
			return
		}
		// A stalled link: the query returns within pgx's deadline delay.
		conn2, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		defer conn2.Close(ctx)
		resume := tn.stall()
		defer resume()
		qctx2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel2()
		testutil.Within(t, 5*time.Second, "pgx on a stalled link", func() {
			_, err = conn2.Exec(qctx2, "select 1")
		})
		require.Error(t, err)
	})
}

func TestLibPQ(t *testing.T) {
	pg := startPostgres(t)
	forEachTunnel(t, func(t *testing.T, tn tunnel) {
		_, port, _ := strings.Cut(pg, ":")
		dsn := "host=db.internal port=" + port + " user=postgres dbname=postgres sslmode=disable connect_timeout=5"
		connector, err := pq.NewConnector(dsn)
		require.NoError(t, err)
		connector.Dialer(sshdial.New(tn.client)) // pq.Dialer: Dial and DialTimeout
		db := sql.OpenDB(connector)
		defer db.Close()

		var s string
		require.NoError(t, db.QueryRow("select 'pq ok'").Scan(&s))
		require.Equal(t, "pq ok", s)

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		took := testutil.Within(t, 5*time.Second, "lib/pq cancelled pg_sleep", func() {
			_, err = db.ExecContext(ctx, "select pg_sleep(5)")
		})
		require.Error(t, err)
		require.Less(t, took, 2*time.Second)
		requireNoPgSleepers(t, pg)

		if tn.stall == nil {
			return
		}
		// On cancellation lib/pq only sends a cancel request and keeps
		// reading without a deadline, so on a dead link it would wait
		// forever, over plain TCP as well. The Dialer's keepalive notices
		// the silent server and fails the connection.
		kaConnector, err := pq.NewConnector(dsn)
		require.NoError(t, err)
		kaConnector.Dialer(sshdial.New(tn.client, sshdial.WithKeepalive(100*time.Millisecond, 300*time.Millisecond)))
		kaDB := sql.OpenDB(kaConnector)
		defer kaDB.Close()
		require.NoError(t, kaDB.QueryRow("select 1").Scan(&s))
		resume := tn.stall()
		defer resume()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel2()
		testutil.Within(t, 5*time.Second, "lib/pq on a stalled link with keepalive", func() {
			err = kaDB.QueryRowContext(ctx2, "select 1").Scan(&s)
		})
		require.Error(t, err)
	})
}

var mysqlNets atomic.Int32

func TestMySQL(t *testing.T) {
	my := startMariaDB(t)
	forEachTunnel(t, func(t *testing.T, tn tunnel) {
		netName := fmt.Sprintf("sshdial%d", mysqlNets.Add(1))
		mysql.RegisterDialContext(netName, sshdial.New(tn.client).DialTCPContext)
		db, err := sql.Open("mysql", fmt.Sprintf("root@%s(%s)/?readTimeout=500ms&writeTimeout=500ms&timeout=5s", netName, behind("db.internal", my)))
		require.NoError(t, err)
		defer db.Close()

		var v int
		require.NoError(t, db.QueryRow("select 40 + 2").Scan(&v))
		require.Equal(t, 42, v)

		// The read timeout fires while the server sleeps.
		took := testutil.Within(t, 5*time.Second, "mysql readTimeout", func() {
			err = db.QueryRow("select sleep(3)").Scan(&v)
		})
		require.Error(t, err)
		require.Less(t, took, 2*time.Second)

		if tn.stall == nil {
			return
		}
		require.NoError(t, db.QueryRow("select 1").Scan(&v))
		resume := tn.stall()
		defer resume()
		took = testutil.Within(t, 5*time.Second, "mysql on a stalled link", func() {
			err = db.QueryRow("select 1").Scan(&v)
		})
		require.Error(t, err)
		require.Less(t, took, 3*time.Second)
	})
}

func TestRedis(t *testing.T) {
	addr := behind("cache.internal", startRedis(t))
	forEachTunnel(t, func(t *testing.T, tn tunnel) {
		ctx := context.Background()
		rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: sshdial.New(tn.client).DialContext})
		defer rdb.Close()

		require.NoError(t, rdb.Ping(ctx).Err())
		require.NoError(t, rdb.Set(ctx, "k-"+tn.name, "v", 0).Err())
		got, err := rdb.Get(ctx, "k-"+tn.name).Result()
		require.NoError(t, err)
		require.Equal(t, "v", got)

		took := testutil.Within(t, 5*time.Second, "BLPOP with timeout", func() {
			err = rdb.BLPop(ctx, 300*time.Millisecond, "empty-"+tn.name).Err()
		})
		require.ErrorIs(t, err, redis.Nil)
		require.GreaterOrEqual(t, took, 250*time.Millisecond)

		// A read timeout that fires.
		slow := redis.NewClient(&redis.Options{Addr: addr, Dialer: sshdial.New(tn.client).DialContext,
			ReadTimeout: 300 * time.Millisecond, MaxRetries: -1})
		defer slow.Close()
		require.NoError(t, slow.Ping(ctx).Err())
		took = testutil.Within(t, 5*time.Second, "DEBUG SLEEP with a read timeout", func() {
			err = slow.Do(ctx, "DEBUG", "SLEEP", "2").Err()
		})
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "%v", err)
		require.Less(t, took, 1500*time.Millisecond)

		if tn.stall == nil {
			return
		}
		// DEBUG SLEEP blocks the whole Redis server: wait until it is back.
		require.Eventually(t, func() bool { return slow.Ping(ctx).Err() == nil }, 5*time.Second, 50*time.Millisecond)
		resume := tn.stall()
		defer resume()
		took = testutil.Within(t, 5*time.Second, "redis on a stalled link", func() {
			err = slow.Ping(ctx).Err()
		})
		require.Error(t, err)
		require.Less(t, took, 2*time.Second)
	})
}

func TestGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(lis)
	defer gs.Stop()

	forEachTunnel(t, func(t *testing.T, tn tunnel) {
		api := behind("api.internal", lis.Addr().String())
		d := sshdial.New(tn.client)

		// grpc.NewClient's default scheme is dns: gRPC resolves the name
		// itself and never calls the dialer.
		for _, target := range []string{api, "dns:///" + api} {
			var dials atomic.Int32
			cc, err := grpc.NewClient(target,
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
					dials.Add(1)
					return d.DialTCPContext(ctx, addr)
				}),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
			cancel()
			cc.Close()
			require.Equal(t, codes.Unavailable, status.Code(err), "%s: %v", target, err)
			require.Zero(t, dials.Load(), "%s: gRPC called the dialer", target)
		}

		// passthrough:/// hands the name to the dialer unchanged.
		cc, err := grpc.NewClient("passthrough:///"+api,
			grpc.WithContextDialer(d.DialTCPContext),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status)

		// A server-streaming call cancelled mid-stream.
		sctx, scancel := context.WithCancel(context.Background())
		stream, err := hc.Watch(sctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		first, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.Status)
		scancel()
		testutil.Within(t, 5*time.Second, "Recv after cancel", func() {
			_, err = stream.Recv()
		})
		require.Equal(t, codes.Canceled, status.Code(err))

		if tn.stall == nil {
			return
		}
		resume := tn.stall()
		defer resume()
		dctx, dcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer dcancel()
		testutil.Within(t, 5*time.Second, "gRPC on a stalled link", func() {
			_, err = hc.Check(dctx, &healthpb.HealthCheckRequest{})
		})
		require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	})
}
