package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sshdial/sshdial"
	"golang.org/x/crypto/ssh"
)

// stat is a median with its min and max over the repetitions.
type stat struct{ med, lo, hi float64 }

func summarize(v []float64) stat {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return stat{}
	}
	return stat{med: s[len(s)/2], lo: s[0], hi: s[len(s)-1]}
}

// latency is p50 and p99, each summarized over the repetitions.
type latency struct{ p50, p99 stat }

type results struct {
	started                         time.Time
	machine, goVersion, xcrypto     string
	sshd, sshClient, command        string
	cli                             string // the -cli binary and its version, if any
	reps                            int
	size                            int64
	throughput, cpuPerGiB           map[string]stat // key: cipher|direction|mode
	pool                            map[string]stat // key: direction|SSH connections
	dial, ping                      map[string]latency
	dialOrder, pingOrder, modeOrder []string
	tunnels                         []tunnelRow
	goBench                         []string // result lines of go test -bench
	peakRSS                         []rssRow // the forwarding processes', at the end of the run
}

// rssRow is a forwarding process's peak resident memory.
type rssRow struct {
	mode, cipher string
	bytes        int64
}

type tunnelRow struct {
	mode string
	tunnelStats
}

func key(parts ...string) string { return strings.Join(parts, "|") }

func run() (*results, error) {
	e, err := setup()
	if e != nil {
		defer e.close()
	}
	if err != nil {
		return nil, err
	}
	r := &results{
		started:    time.Now(),
		machine:    machine(),
		goVersion:  runtime.Version(),
		xcrypto:    moduleVersion("golang.org/x/crypto"),
		sshd:       e.sshdVersion,
		sshClient:  e.sshVers,
		cli:        e.cliVersion,
		command:    "cd bench && go run . " + strings.Join(os.Args[1:], " "),
		reps:       *flagReps,
		size:       *flagSize,
		throughput: map[string]stat{},
		cpuPerGiB:  map[string]stat{},
		pool:       map[string]stat{},
	}

	// Throughput, per cipher and direction, modes interleaved per rep.
	for _, cipher := range ciphers {
		if !want("throughput") {
			break
		}
		modes, closeModes, err := e.modes(cipher)
		if err != nil {
			return nil, err
		}
		for _, m := range modes { // the union over the ciphers: a -cli binary may run with one only
			if !slices.Contains(r.modeOrder, m.name) {
				r.modeOrder = append(r.modeOrder, m.name)
			}
		}
		for _, dir := range []string{"upload", "download"} {
			dirModes := modes
			if dir == "download" {
				// x/crypto allocates every packet it reads: show what
				// the GC setting of the program does to downloads.
				dirModes = slices.Clone(modes)
				for _, m := range modes {
					if m.name != "sshdial" && m.name != "x/crypto raw" {
						continue // -modes may have left them out
					}
					m.name += gcSuffix
					m.gcPercent = tunedGC
					dirModes = append(dirModes, m)
				}
			}
			rates := map[string][]float64{}
			cpus := map[string][]float64{}
			for rep := 0; rep < *flagReps; rep++ {
				for _, i := range shuffled(len(dirModes)) {
					m := dirModes[i]
					n, el, cpu, err := transfer(m, e, dir == "upload")
					if err != nil {
						closeModes()
						return nil, fmt.Errorf("%s %s %s: %v", cipher, dir, m.name, err)
					}
					rates[m.name] = append(rates[m.name], float64(n)/el.Seconds()/1e6)
					cpus[m.name] = append(cpus[m.name], cpu.Seconds()/(float64(n)/(1<<30)))
				}
			}
			for name := range rates {
				r.throughput[key(cipher, dir, name)] = summarize(rates[name])
				r.cpuPerGiB[key(cipher, dir, name)] = summarize(cpus[name])
				log.Printf("%-30s %-8s %-14s %8.0f MB/s  %.2f CPU-s/GiB", cipher, dir, name,
					r.throughput[key(cipher, dir, name)].med, r.cpuPerGiB[key(cipher, dir, name)].med)
			}
		}
		closeModes()
	}

	// Parallel transfers through a Pool of 1 and of 2 SSH connections.
	for _, dir := range []string{"upload", "download"} {
		if !want("pool") {
			break
		}
		rates := map[int][]float64{}
		for rep := 0; rep < *flagReps; rep++ {
			for _, size := range poolSizes {
				pool := sshdial.NewPool(size, func(context.Context) (*ssh.Client, error) {
					return e.client(ciphers[0], true)
				})
				dial := func(a string) (net.Conn, error) { return pool.Dial("tcp", a) }
				n, el, err := parallelTransfer(dial, e, dir == "upload", parallelTransfers)
				pool.Close()
				if err != nil {
					return nil, fmt.Errorf("pool of %d, %s: %v", size, dir, err)
				}
				rates[size] = append(rates[size], float64(n)/el.Seconds()/1e6)
			}
		}
		for _, size := range poolSizes {
			r.pool[key(dir, strconv.Itoa(size))] = summarize(rates[size])
			log.Printf("%d parallel %-8s over %d SSH connection(s): %8.0f MB/s", parallelTransfers, dir, size, r.pool[key(dir, strconv.Itoa(size))].med)
		}
	}

	// Dial latency, with and without TCP_QUICKACK on the SSH connection,
	// and 64-byte ping-pong.
	type dialer struct {
		name string
		dial func(string) (interface{ Close() error }, error)
	}
	cipher := ciphers[0]
	plain, err := e.client(cipher, false)
	if err != nil {
		return nil, err
	}
	defer plain.Close()
	modes, closeModes, err := e.modes(cipher) // clients with QUICKACK
	if err != nil {
		return nil, err
	}
	defer closeModes()
	byName := map[string]mode{}
	for _, m := range modes {
		byName[m.name] = m
	}
	plainModes := []mode{
		{name: "sshdial, no QUICKACK", dial: sshdialDial(plain)},
		{name: "x/crypto raw, no QUICKACK", dial: rawDial(plain)},
	}
	dialModes := append(plainModes, byName["sshdial"], byName["x/crypto raw"], byName["ssh -L"], byName["direct TCP"], byName["ssh -D"], byName[viaMaster], byName[muxRaw])
	for _, kind := range cliKinds() {
		if m, ok := byName[kind.name]; ok {
			dialModes = append(dialModes, m)
		}
	}
	for _, m := range dialModes {
		r.dialOrder = append(r.dialOrder, m.name)
	}
	per := max(1, *flagDials / *flagReps)
	p50s, p99s := map[string][]float64{}, map[string][]float64{}
	for rep := 0; rep < *flagReps && want("dial"); rep++ {
		// The modes take turns every dialBurst dials, so that a slow spell
		// of this shared machine falls on all of them alike.
		samples := map[string][]time.Duration{}
		for taken := 0; taken < per; taken += dialBurst {
			for _, i := range shuffled(len(dialModes)) {
				m := dialModes[i]
				d, err := dialLatencies(m.dial, e.echo, min(dialBurst, per-taken))
				if err != nil {
					return nil, fmt.Errorf("dial %s: %v", m.name, err)
				}
				samples[m.name] = append(samples[m.name], d...)
			}
		}
		addPercentiles(samples, p50s, p99s)
	}
	r.dial = summarizeLatencies("dial", p50s, p99s)

	pingModes := modes
	for _, m := range pingModes {
		r.pingOrder = append(r.pingOrder, m.name)
	}
	per = max(1, *flagPings / *flagReps)
	p50s, p99s = map[string][]float64{}, map[string][]float64{}
	for rep := 0; rep < *flagReps && want("ping"); rep++ {
		// One connection per mode, the modes taking turns every pingBurst
		// round trips, as the dials do.
		conns := make([]net.Conn, len(pingModes))
		closeConns := func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}
		for i, m := range pingModes {
			c, err := m.dial(e.echo)
			if err != nil {
				closeConns()
				return nil, fmt.Errorf("ping %s: %v", m.name, err)
			}
			conns[i] = c
		}
		samples := map[string][]time.Duration{}
		for taken := 0; taken < per; taken += pingBurst {
			for _, i := range shuffled(len(pingModes)) {
				d, err := pingLatencies(conns[i], min(pingBurst, per-taken))
				if err != nil {
					closeConns()
					return nil, fmt.Errorf("ping %s: %v", pingModes[i].name, err)
				}
				samples[pingModes[i].name] = append(samples[pingModes[i].name], d...)
			}
		}
		closeConns()
		addPercentiles(samples, p50s, p99s)
	}
	r.ping = summarizeLatencies("ping", p50s, p99s)

	// Many idle tunnels on one SSH connection.
	for _, field := range strings.Split(*flagTunnels, ",") {
		if !want("tunnels") {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad -tunnels %q", *flagTunnels)
		}
		for _, useSSHDial := range []bool{false, true} {
			st, err := tunnels(e, n, useSSHDial)
			name := "x/crypto raw"
			if useSSHDial {
				name = "sshdial"
			}
			if err != nil {
				return nil, fmt.Errorf("%d tunnels %s: %v", n, name, err)
			}
			r.tunnels = append(r.tunnels, tunnelRow{name, st})
			log.Printf("%d tunnels %-12s open %v, %.0f B heap and %.1f goroutines each idle, %.0f B after echo, %d goroutines left",
				n, name, st.open.Round(time.Millisecond), st.heapIdle, st.goroutines, st.heapAfterEcho, st.leftAfterClose)
		}
	}
	for _, f := range e.forwards {
		r.peakRSS = append(r.peakRSS, rssRow{f.name, f.cipher, f.peakRSS()})
	}
	slices.SortFunc(r.peakRSS, func(a, b rssRow) int { return cmp.Or(cmp.Compare(a.mode, b.mode), cmp.Compare(a.cipher, b.cipher)) })
	for _, row := range r.peakRSS {
		log.Printf("peak RSS %-12s %-30s %5.1f MiB", row.mode, cmp.Or(row.cipher, "its own cipher"), float64(row.bytes)/(1<<20))
	}
	if want("gobench") {
		lines, err := goBenchmarks()
		if err != nil {
			return nil, err
		}
		r.goBench = lines
		for _, l := range lines {
			log.Print(l)
		}
	}
	return r, nil
}

// addPercentiles appends each mode's p50 and p99 of one repetition's samples.
func addPercentiles(samples map[string][]time.Duration, p50s, p99s map[string][]float64) {
	for name, d := range samples {
		p50s[name] = append(p50s[name], us(percentile(d, 0.50)))
		p99s[name] = append(p99s[name], us(percentile(d, 0.99)))
	}
}

// summarizeLatencies summarizes each mode's p50s and p99s over the
// repetitions, and logs them.
func summarizeLatencies(what string, p50s, p99s map[string][]float64) map[string]latency {
	out := map[string]latency{}
	for name := range p50s {
		out[name] = latency{summarize(p50s[name]), summarize(p99s[name])}
		log.Printf("%s %-26s p50 %6.0f µs  p99 %6.0f µs", what, name, out[name].p50.med, out[name].p99.med)
	}
	return out
}

// tunedGC is the GOGC of the download rows named with gcSuffix.
const tunedGC = 400

var gcSuffix = fmt.Sprintf(", GOGC=%d", tunedGC)

// shuffled returns 0..n-1 in a random order: the order of the modes in each
// round. A fixed or rotated order always runs a mode right after the same
// other one, and what that one leaves behind (garbage, a cold sshd process
// when it used another SSH connection) falls on it alone: in a rotated
// order sshdial's dials always came right after another SSH connection's
// turn and showed ~7% slower than raw's; in a random order, ~2%.
func shuffled(n int) []int { return rand.Perm(n) }

// dialBurst is how many dials a mode makes before the next mode's turn.
const dialBurst = 10

// pingBurst is how many round trips a mode makes before the next mode's turn.
const pingBurst = 50

// The pool figure: this many transfers at once, over Pools of these sizes.
const parallelTransfers = 8

var poolSizes = []int{1, 2}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}
