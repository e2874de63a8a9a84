// Command bench measures sshdial side by side with the alternatives, in one
// run on one machine: the sshdial Conn, x/crypto's own tunnel conn ("raw"),
// OpenSSH's `ssh -L` and `ssh -D` (through x/net/proxy's SOCKS5 client), and
// direct TCP, all through a throwaway OpenSSH sshd on 127.0.0.1; with -cli,
// also another forwarding binary as "sshdial -L" and "sshdial -D", such as
// cmd/sshdial. It writes a Markdown report and a PNG plot.
//
//	bench/run.sh   # installs what it lacks, then: go run . -out ../BENCHMARKS.md -png ../docs/bench.png
//
// Every figure is a median of -reps runs with min–max, next to its ratio to
// the baselines measured in the same run.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sshdial/sshdial"
	"github.com/sshdial/sshdial/internal/opensshd"
	"github.com/sshdial/sshdial/internal/sshmux"
	"golang.org/x/crypto/ssh"
)

var (
	flagReps    = flag.Int("reps", 5, "repetitions per figure")
	flagSize    = flag.Int64("size", 256<<20, "bytes per throughput run")
	flagMaxTime = flag.Duration("maxtime", 3*time.Second, "time bound per throughput run (the figure uses the bytes moved)")
	flagDials   = flag.Int("dials", 2000, "sequential dials per latency figure")
	flagPings   = flag.Int("pings", 5000, "64-byte round trips per latency figure")
	flagTunnels = flag.String("tunnels", "1000,10000", "concurrent tunnel counts")
	flagOut     = flag.String("out", "", "write the Markdown report here (default: stdout only)")
	flagPNG     = flag.String("png", "", "write the plot here")
	flagQuick   = flag.Bool("quick", false, "a smoke run: tiny sizes and counts")
	flagProfile = flag.String("cpuprofile", "", "write a CPU profile of the run here")
	flagCLI     = flag.String("cli", "", "also measure this binary as \"sshdial -L\" and \"sshdial -D\": a forwarding proxy process that takes ssh's -N -L/-D -i -o UserKnownHostsFile= -o StrictHostKeyChecking= -p flags; and, as a baseline for it, bench/xfwd (\"x/crypto -L\", \"x/crypto -D\"), the same on x/crypto's ssh.Client written the plain way")
	flagCLIArgs = flag.String("cli-args", "", "more arguments for the -cli binary, space-separated; {cipher} in them is replaced by the cipher, and then the -cli modes run with each cipher, else with the binary's own choice in the "+ciphers[0]+" rows only")
	flagModes   = flag.String("modes", "", "measure only the modes named here, comma-separated (\"ssh -L,sshdial via master\"), in the parts that compare modes; all when empty")
	flagOnly    = flag.String("only", "", "measure only these parts, comma-separated ("+strings.Join(parts, ", ")+"): a probe that logs its figures, and writes a report of those parts only with -out (no -png)")
)

// parts are what a run measures, in order; -only picks some.
var parts = []string{"throughput", "pool", "dial", "ping", "tunnels", "gobench"}

// want reports whether part is measured in this run.
func want(part string) bool {
	if *flagOnly == "" {
		return true
	}
	return slices.Contains(onlyParts(), part)
}

// onlyParts returns the parts named by -only.
func onlyParts() []string {
	var named []string
	for _, p := range strings.Split(*flagOnly, ",") {
		named = append(named, strings.TrimSpace(p))
	}
	return named
}

var ciphers = []string{"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "targets" {
		runTargets()
		return
	}
	flag.Parse()
	if *flagQuick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, value := range map[string]string{"reps": "2", "size": "8388608", "dials": "50", "pings": "200", "tunnels": "100"} {
			if !set[name] {
				flag.Set(name, value)
			}
		}
	}
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	if *flagOnly != "" {
		for _, p := range onlyParts() {
			if !slices.Contains(parts, p) {
				log.Fatalf("-only: unknown part %q (%s)", p, strings.Join(parts, ", "))
			}
		}
		if *flagPNG != "" {
			log.Fatal("-only makes a partial run: it writes no -png")
		}
	}
	stopOnSignal()
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	r, err := run()
	if err != nil {
		log.Fatal(err)
	}
	if *flagOnly != "" && *flagOut == "" {
		return // the figures were logged
	}
	report := r.markdown()
	fmt.Print(report)
	if *flagOut != "" {
		if err := os.WriteFile(*flagOut, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *flagPNG != "" {
		os.MkdirAll(filepath.Dir(*flagPNG), 0o755)
		if err := r.plot(*flagPNG); err != nil {
			log.Fatal(err)
		}
	}
}

// env is what a run sets up: sshd, the targets, forwarding processes
// (ssh -L, ssh -D, and the -cli binary's), clients.
type env struct {
	sshd                 *opensshd.Server
	source, sink, echo   string
	keyFile, knownHosts  string
	forwards             map[string]*forward         // by key(mode name, cipher); cipher "" for a -cli binary's own choice
	masters              map[string]*opensshd.Master // ControlMasters by cipher
	closers              []func()
	sshdVersion, sshVers string
	cliVersion           string        // what the -cli binary says to -V
	sshtestAddr          string        // the targets' in-process SSH server
	sshtestKey           ssh.PublicKey // its host key
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func setup() (*env, error) {
	e := &env{forwards: map[string]*forward{}, masters: map[string]*opensshd.Master{}}
	cleanup.Lock()
	cleanup.env = e
	cleanup.Unlock()
	sshd, err := opensshd.Launch("MaxSessions 100000")
	if err != nil {
		return nil, err
	}
	e.sshd = sshd
	e.closers = append(e.closers, sshd.Close)

	// Targets in a child process.
	self, err := os.Executable()
	if err != nil {
		return e, err
	}
	cmd := exec.Command(self, "targets")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return e, err
	}
	e.closers = append(e.closers, func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return e, fmt.Errorf("targets: %v", err)
	}
	addrs := strings.Fields(line)
	if len(addrs) != 5 {
		return e, fmt.Errorf("targets said %q", line)
	}
	e.source, e.sink, e.echo, e.sshtestAddr = addrs[0], addrs[1], addrs[2], addrs[3]
	e.sshtestKey, _, _, _, err = ssh.ParseAuthorizedKey([]byte(strings.ReplaceAll(addrs[4], "_", " ")))
	if err != nil {
		return e, fmt.Errorf("targets' host key: %v", err)
	}

	// Key files for the forwarding processes.
	dir, err := os.MkdirTemp("", "sshdial-bench")
	if err != nil {
		return e, err
	}
	e.closers = append(e.closers, func() { os.RemoveAll(dir) })
	e.keyFile = filepath.Join(dir, "id")
	if err := writeKey(e.keyFile, sshd); err != nil {
		return e, err
	}
	e.knownHosts = filepath.Join(dir, "known_hosts")
	if err := writeKnownHosts(e.knownHosts, sshd); err != nil {
		return e, err
	}
	start := func(kind forwardKind, cipher string, extra []string) error {
		f, err := startForward(e, kind, cipher, extra)
		if err != nil {
			return err
		}
		e.forwards[key(kind.name, cipher)] = f
		e.closers = append(e.closers, f.close)
		return nil
	}
	for _, c := range ciphers {
		for _, kind := range []forwardKind{sshL, sshD} {
			if err := start(kind, c, nil); err != nil {
				return e, err
			}
		}
	}
	// A ControlMaster per cipher, for the via-master modes.
	for _, c := range ciphers {
		m, err := sshd.LaunchMaster("-o", "Ciphers="+c)
		if err != nil {
			return e, err
		}
		e.masters[c] = m
		e.closers = append(e.closers, m.Close)
	}
	if *flagCLI != "" {
		xfwdBin = filepath.Join(dir, "xfwd")
		if out, err := exec.Command("go", "build", "-o", xfwdBin, "github.com/sshdial/sshdial/bench/xfwd").CombinedOutput(); err != nil {
			return e, fmt.Errorf("building bench/xfwd: %v\n%s", err, out)
		}
		for _, kind := range cliKinds() {
			if kind.viaMaster {
				for _, c := range ciphers {
					if err := start(kind, c, []string{"-S", e.masters[c].Sock}); err != nil {
						return e, err
					}
					e.forwards[key(kind.name, c)].master = e.masters[c].Pid()
				}
				continue
			}
			if kind.baseline {
				if err := start(kind, "", nil); err != nil {
					return e, err
				}
				continue
			}
			if !cliPerCipher() {
				if err := start(kind, "", cliArgs("")); err != nil {
					return e, err
				}
				continue
			}
			for _, c := range ciphers {
				if err := start(kind, c, cliArgs(c)); err != nil {
					return e, err
				}
			}
		}
		e.cliVersion = *flagCLI
		if out, err := exec.Command(*flagCLI, "-V").CombinedOutput(); err == nil && len(out) > 0 {
			e.cliVersion += ", " + strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	e.sshdVersion = versionOf(opensshd.Path(), "-V")
	e.sshVers = versionOf("ssh", "-V")
	return e, nil
}

func versionOf(bin string, arg string) string {
	out, _ := exec.Command(bin, arg).CombinedOutput()
	s := strings.TrimSpace(string(out))
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "OpenSSH") {
			return strings.TrimSpace(l)
		}
	}
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return s
}

// client connects an x/crypto client to sshd with one cipher, with or
// without TCP_QUICKACK.
func (e *env) client(cipher string, quickAck bool) (*ssh.Client, error) {
	cfg := e.sshd.ClientConfig()
	cfg.Ciphers = []string{cipher}
	if quickAck {
		return sshdial.DialSSH(context.Background(), e.sshd.Addr, cfg)
	}
	return ssh.Dial("tcp", e.sshd.Addr, cfg)
}

// A way to dial a target.
type mode struct {
	name      string
	dial      func(addr string) (net.Conn, error)
	extraCPU  func() time.Duration // CPU of a helper process (ssh -L)
	gcPercent int                  // GOGC for the transfer, if not 0
}

func (e *env) modes(cipher string) ([]mode, func(), error) {
	client, err := e.client(cipher, true)
	if err != nil {
		return nil, nil, err
	}
	modes := []mode{
		{name: "sshdial", dial: sshdialDial(client)},
		{name: "x/crypto raw", dial: rawDial(client)},
		e.forwardMode(sshL.name, cipher),
		{name: "direct TCP", dial: func(a string) (net.Conn, error) { return net.Dial("tcp", a) }},
		e.forwardMode(sshD.name, cipher),
	}
	for _, kind := range cliKinds() {
		if m := e.forwardMode(kind.name, cipher); m.name != "" {
			modes = append(modes, m)
		}
	}
	master := e.masters[cipher]
	viaDialer := sshdial.New(nil, sshdial.WithControl(master.Sock, sshdial.ControlRequired))
	muxClient, err := sshmux.Dial(context.Background(), master.Sock)
	if err != nil {
		client.Close()
		viaDialer.Close()
		return nil, nil, err
	}
	masterCPU := func() time.Duration { return procCPU(master.Pid()) }
	modes = append(modes,
		mode{name: viaMaster, dial: func(a string) (net.Conn, error) { return viaDialer.Dial("tcp", a) }, extraCPU: masterCPU},
		mode{name: muxRaw, dial: muxDial(muxClient), extraCPU: masterCPU},
	)
	return selectModes(modes), func() { client.Close(); viaDialer.Close() }, nil
}

// selectModes keeps the modes that -modes names, or all when it is empty.
func selectModes(modes []mode) []mode {
	if *flagModes == "" {
		return modes
	}
	keep := map[string]bool{}
	for _, n := range strings.Split(*flagModes, ",") {
		keep[strings.TrimSpace(n)] = true
	}
	var out []mode
	for _, m := range modes {
		if keep[m.name] {
			out = append(out, m)
		}
	}
	return out
}

// The modes through a ControlMaster.
const (
	viaMaster     = "sshdial via master"
	muxRaw        = "mux raw"
	cliViaMasterL = "sshdial -L via master" // the -cli binary with -S sock
	cliViaMasterD = "sshdial -D via master"
)

// muxDial opens the master's stdio forwards directly (internal/sshmux).
func muxDial(c *sshmux.Client) func(string) (net.Conn, error) {
	return func(a string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, err
		}
		return c.OpenStdioFwd(context.Background(), host, p)
	}
}

// forwardMode is the mode of a forwarding process with cipher, or the zero
// mode if there is none. A -cli binary that chooses its own cipher runs in
// the rows of the first cipher.
func (e *env) forwardMode(name, cipher string) mode {
	f := e.forwards[key(name, cipher)]
	if f == nil && cipher == ciphers[0] {
		f = e.forwards[key(name, "")]
	}
	if f == nil {
		return mode{}
	}
	return mode{name: name, dial: f.dial, extraCPU: f.cpu}
}

// cliPerCipher reports whether the -cli binary is told the cipher.
func cliPerCipher() bool { return strings.Contains(*flagCLIArgs, "{cipher}") }

// cliArgs are the -cli-args for cipher.
func cliArgs(cipher string) []string {
	return strings.Fields(strings.ReplaceAll(*flagCLIArgs, "{cipher}", cipher))
}

// transfer moves bytes one way and returns bytes, elapsed time and CPU.
func transfer(m mode, e *env, upload bool) (int64, time.Duration, time.Duration, error) {
	conn, err := m.dial(e.target(upload))
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	if m.gcPercent != 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(m.gcPercent))
	}
	cpu0, extra0 := cpuTime(), time.Duration(0)
	if m.extraCPU != nil {
		extra0 = m.extraCPU()
	}
	start := time.Now()
	n, err := move(conn, upload, *flagSize, start.Add(*flagMaxTime))
	if err != nil {
		return 0, 0, 0, err
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if m.extraCPU != nil {
		cpu += m.extraCPU() - extra0
	}
	return n, elapsed, cpu, nil
}

// target is the sink for uploads and the source for downloads.
func (e *env) target(upload bool) string {
	if upload {
		return e.sink
	}
	return e.source
}

// move runs one transfer of size bytes on conn, to the sink or from the
// source, and stops early at stop; it returns the bytes moved.
func move(conn net.Conn, upload bool, size int64, stop time.Time) (int64, error) {
	var n int64
	buf := make([]byte, 256<<10)
	if upload {
		for n < size && time.Now().Before(stop) {
			k, err := conn.Write(buf[:min(int64(len(buf)), size-n)])
			n += int64(k)
			if err != nil {
				return 0, err
			}
		}
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		var got uint64
		if err := binary.Read(conn, binary.BigEndian, &got); err != nil {
			return 0, fmt.Errorf("upload ack: %v", err)
		}
		if int64(got) != n {
			return 0, fmt.Errorf("upload: sent %d, target got %d", n, got)
		}
		return n, nil
	}
	if err := binary.Write(conn, binary.BigEndian, uint64(size)); err != nil {
		return 0, err
	}
	conn.SetReadDeadline(stop)
	for n < size {
		k, err := conn.Read(buf)
		n += int64(k)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break // time-bounded: count what arrived
			}
			return 0, err
		}
	}
	return n, nil
}

// parallelTransfer dials k connections, then runs a transfer on each at
// once, each of an equal share of -size, and returns the bytes moved by all
// and the time until the last finished.
func parallelTransfer(dial func(string) (net.Conn, error), e *env, upload bool, k int) (int64, time.Duration, error) {
	conns := make([]net.Conn, 0, k)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range k {
		c, err := dial(e.target(upload))
		if err != nil {
			return 0, 0, err
		}
		conns = append(conns, c)
	}
	start := time.Now()
	stop := start.Add(*flagMaxTime)
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for _, c := range conns {
		wg.Go(func() {
			n, err := move(c, upload, *flagSize/int64(k), stop)
			total.Add(n)
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, 0, err
	default:
	}
	return total.Load(), elapsed, nil
}

// dialLatencies dials (and closes) n times.
func dialLatencies(dial func(string) (net.Conn, error), addr string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		c, err := dial(addr)
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		c.Close()
	}
	return out, nil
}

// pingLatencies does n 64-byte round trips on c.
func pingLatencies(c net.Conn, n int) ([]time.Duration, error) {
	msg := make([]byte, 64)
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// tunnelStats is the cost of many idle tunnels on one SSH connection.
type tunnelStats struct {
	n                               int
	open                            time.Duration
	heapIdle, heapAfterEcho         float64 // bytes per tunnel
	goroutines, goroutinesAfterEcho float64 // per tunnel
	leftAfterClose                  int     // goroutines above the baseline after Close
}

// heapNow returns live heap plus goroutine stacks, after a GC: the memory
// a tunnel costs, whether it is in objects or in its goroutines.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

func tunnels(e *env, n int, useSSHDial bool) (tunnelStats, error) {
	st := tunnelStats{n: n}
	client, err := sshdial.DialSSH(context.Background(), e.sshtestAddr, &ssh.ClientConfig{
		User:            "bench",
		HostKeyCallback: ssh.FixedHostKey(e.sshtestKey),
		Config:          ssh.Config{Ciphers: []string{ciphers[0]}},
	})
	if err != nil {
		return st, err
	}
	defer client.Close()
	dial := rawDial(client)
	if useSSHDial {
		dial = sshdialDial(client)
	}
	g0, h0 := runtime.NumGoroutine(), heapNow()
	conns := make([]net.Conn, n)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				c, err := dial("echo.in-memory:7")
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	st.open = time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		return st, firstErr
	}
	st.heapIdle = float64(int64(heapNow())-int64(h0)) / float64(n)
	st.goroutines = float64(runtime.NumGoroutine()-g0) / float64(n)

	msg := make([]byte, 64)
	for _, c := range conns {
		if _, err := c.Write(msg); err != nil {
			return st, err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return st, err
		}
	}
	st.heapAfterEcho = float64(int64(heapNow())-int64(h0)) / float64(n)
	st.goroutinesAfterEcho = float64(runtime.NumGoroutine()-g0) / float64(n)

	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st.leftAfterClose = max(0, runtime.NumGoroutine()-g0)
	return st, nil
}

// sshdialDial dials through an sshdial Dialer on client.
func sshdialDial(client *ssh.Client) func(string) (net.Conn, error) {
	d := sshdial.New(client)
	return func(a string) (net.Conn, error) { return d.Dial("tcp", a) }
}

// rawDial dials with x/crypto's own client.Dial.
func rawDial(client *ssh.Client) func(string) (net.Conn, error) {
	return func(a string) (net.Conn, error) { return client.Dial("tcp", a) }
}

// cleanup holds what must be stopped if the run is interrupted.
var cleanup struct {
	sync.Mutex
	env *env
}

// stopOnSignal stops sshd, the forwarding processes and the targets on Ctrl-C or SIGTERM.
func stopOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		cleanup.Lock()
		if cleanup.env != nil {
			cleanup.env.close()
		}
		os.Exit(1)
	}()
}
