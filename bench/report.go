package main

import (
	"cmp"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func (s stat) String() string {
	return fmt.Sprintf("%.0f (%.0f–%.0f)", s.med, s.lo, s.hi)
}

func ratio(a, b stat) string {
	if b.med == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.med/b.med)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *results) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Measured by `bench/` in one run: the sshdial Conn, x/crypto's own tunnel conn (\"x/crypto raw\"), ")
	p("OpenSSH `ssh -L` and `ssh -D` (reached with x/net/proxy's SOCKS5 client) and direct TCP, through a throwaway OpenSSH sshd on 127.0.0.1. ")
	if r.cli != "" {
		p("\"sshdial -L\" and \"sshdial -D\" are the -cli binary (%s) run as `ssh -L` and `ssh -D` are; \"%s\" and \"%s\" the same with `-S sock`, through the ControlMaster of the cipher below (its CPU counts with theirs). ", r.cli, cliViaMasterL, cliViaMasterD)
		p("\"x/crypto -L\" and \"x/crypto -D\" are their baseline, bench/xfwd: the same forwarding process written the plain way on x/crypto's ssh.Client (io.Copy each way, no keepalive or reconnect), run the same way, so that sshdial -L / x/crypto -L is what the sshdial command adds, and x/crypto -L / ssh -L what a Go process on x/crypto costs against OpenSSH's C client. ")
	}
	p("\"%s\" is a Dialer made with `WithControl(sock, ControlRequired)` dialing through a running OpenSSH ControlMaster (`ssh -M -N -S sock`, one per cipher, logged in to the same sshd), and \"%s\" the master's stdio forward (internal/sshmux) used directly, without the Conn around it; the master's CPU counts as a forwarding process's. ", viaMaster, muxRaw)
	p("Each figure is the median of %d repetitions, with min–max in parentheses; ratios compare medians of the same run. In each repetition (and each round of dials) the modes run in a random order.\n\n", r.reps)
	p("- Date: %s\n- Machine: %s\n- Go: %s, golang.org/x/crypto %s\n- sshd: %s; ssh: %s\n- Command: `%s`\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.machine, r.goVersion, r.xcrypto, r.sshd, r.sshClient, r.command)
	if *flagOnly == "" {
		p("![throughput and latency](docs/bench.png)\n\n")
	} else {
		p("A partial run (-only %s): the other parts were not measured.\n\n", *flagOnly)
	}
	if want("throughput") {
		r.throughputSection(p)
	}
	if want("dial") {
		r.dialSection(p)
	}
	if want("ping") {
		r.pingSection(p)
	}
	if want("tunnels") {
		r.tunnelSection(p)
	}
	if want("pool") {
		r.poolSection(p)
	}
	if len(r.peakRSS) > 0 {
		p("\n## Forwarding processes' memory\n\n")
		p("Peak resident memory (VmHWM) of each forwarding process at the end of the run, after everything above went through it.\n\n")
		p("| mode | cipher | peak RSS MiB |\n|---|---|---|\n")
		for _, row := range r.peakRSS {
			p("| %s | %s | %.1f |\n", row.mode, cmp.Or(row.cipher, "its own choice"), float64(row.bytes)/(1<<20))
		}
	}
	if want("gobench") {
		p("\n## Conn hot paths (`go test -bench . -benchmem` in the repository root)\n\n")
		p("The library's own benchmarks, sshdial against x/crypto's conn (\"raw\"), both through sshtest on loopback: ns per operation, throughput, bytes and allocations per operation.\n\n```\n%s\n```\n", strings.Join(r.goBench, "\n"))
	}
	return b.String()
}

// printf is the report's writer.
type printf func(format string, args ...any)

func (r *results) throughputSection(p printf) {
	p("## Throughput (MB/s) and client CPU (CPU-seconds per GiB)\n\n")
	p("%d MiB per run, or what moved in %v. Upload is client→target, download target→client. ", r.size>>20, *flagMaxTime)
	p("CPU is this process's (the client side; targets run in a child process), plus the forwarding process's for `ssh -L`, `ssh -D`, the -cli modes and the ControlMaster's.\n\n")
	for _, cipher := range ciphers {
		p("### %s\n\n| mode | upload MB/s | download MB/s | upload CPU-s/GiB | download CPU-s/GiB |\n|---|---|---|---|---|\n", cipher)
		for _, m := range r.modeOrder {
			if _, ok := r.throughput[key(cipher, "upload", m)]; !ok {
				continue // a -cli binary that ran with the other cipher
			}
			p("| %s | %s | %s | %.2f | %.2f |\n", m,
				r.throughput[key(cipher, "upload", m)], r.throughput[key(cipher, "download", m)],
				r.cpuPerGiB[key(cipher, "upload", m)].med, r.cpuPerGiB[key(cipher, "download", m)].med)
		}
		p("\n")
		for _, dir := range []string{"upload", "download"} {
			ours, raw, sshL := r.throughput[key(cipher, dir, "sshdial")], r.throughput[key(cipher, dir, "x/crypto raw")], r.throughput[key(cipher, dir, "ssh -L")]
			cOurs, cRaw := r.cpuPerGiB[key(cipher, dir, "sshdial")], r.cpuPerGiB[key(cipher, dir, "x/crypto raw")]
			p("- %s: sshdial / raw = %s (target ≥ 0.95×: %s); CPU per GiB sshdial / raw = %s (target ≤ 1.1×: %s); sshdial / `ssh -L` = %s",
				dir, ratio(ours, raw), verdict(ours.med >= 0.95*raw.med), ratio(cOurs, cRaw), verdict(cOurs.med <= 1.1*cRaw.med), ratio(ours, sshL))
			if dir == "download" {
				p(" (target ≥ 1.0×: %s)", verdict(ours.med >= sshL.med))
			}
			p("\n")
			for _, m := range []string{viaMaster, cliViaMasterL, cliViaMasterD} {
				if via, ok := r.throughput[key(cipher, dir, m)]; ok {
					p("- %s: %s / `ssh -L` = %s", dir, m, ratio(via, sshL))
					if dir == "download" {
						p(" (target ≥ 1.0×: %s)", verdict(via.med >= sshL.med))
					}
					p("\n")
				}
			}
			p("%s", r.forwardRatios("  - "+dir+" ", func(m string) (stat, bool) {
				v, ok := r.throughput[key(cipher, dir, m)]
				return v, ok
			}))
		}
		tunedOurs, tunedRaw := r.throughput[key(cipher, "download", "sshdial"+gcSuffix)], r.throughput[key(cipher, "download", "x/crypto raw"+gcSuffix)]
		p("- download with GOGC=%d (`debug.SetGCPercent`, interleaved with the rows above): sshdial %s MB/s, %.2f CPU-s/GiB, %s `ssh -L`; x/crypto raw %s MB/s, %.2f CPU-s/GiB, %s `ssh -L`\n",
			tunedGC, tunedOurs, r.cpuPerGiB[key(cipher, "download", "sshdial"+gcSuffix)].med, ratio(tunedOurs, r.throughput[key(cipher, "download", "ssh -L")]),
			tunedRaw, r.cpuPerGiB[key(cipher, "download", "x/crypto raw"+gcSuffix)].med, ratio(tunedRaw, r.throughput[key(cipher, "download", "ssh -L")]))
		p("\n")
	}
}

func (r *results) dialSection(p printf) {
	p("## Channel open (dial) latency, µs\n\n%d sequential dials in all, each closed at once, the modes taking turns every %d dials in a random order; p50 and p99 per repetition.\n\n", *flagDials, dialBurst)
	p("| mode | p50 | p99 |\n|---|---|---|\n")
	for _, m := range r.dialOrder {
		p("| %s | %s | %s |\n", m, r.dial[m].p50, r.dial[m].p99)
	}
	ours, raw := r.dial["sshdial"], r.dial["x/crypto raw"]
	p("\n- `ssh -L`'s dial is the local TCP connect only: its channel opens afterwards, on the first data. ")
	p("A `-D` dial is the SOCKS5 exchange, whose reply comes once the channel is open.\n")
	p("%s", r.forwardRatios("- dial p50 ", func(m string) (stat, bool) { v, ok := r.dial[m]; return v.p50, ok }))
	p("- The SSH connection of the rows without a suffix is made with `sshdial.DialSSH` (TCP_QUICKACK armed); ")
	p("\"no QUICKACK\" rows use a plain `ssh.Dial`.\n")
	p("- p50 sshdial / raw = %s (target ≤ 1.05×: %s); sshdial p99 = %.0f µs (target ≤ 2000 µs: %s); without QUICKACK p99 = %.0f µs.\n\n",
		ratio(ours.p50, raw.p50), verdict(ours.p50.med <= 1.05*raw.p50.med), ours.p99.med, verdict(ours.p99.med <= 2000),
		r.dial["sshdial, no QUICKACK"].p99.med)
}

func (r *results) pingSection(p printf) {
	p("## 64-byte ping-pong, µs\n\n%d round trips in all, on one connection per mode and repetition, the modes taking turns every %d round trips in a random order.\n\n| mode | p50 | p99 |\n|---|---|---|\n", *flagPings, pingBurst)
	for _, m := range r.pingOrder {
		p("| %s | %s | %s |\n", m, r.ping[m].p50, r.ping[m].p99)
	}
	ours, raw, sshL := r.ping["sshdial"], r.ping["x/crypto raw"], r.ping["ssh -L"]
	p("\n- p50 sshdial / raw = %s (target ≤ 1.1×: %s); sshdial / `ssh -L` = %s.\n",
		ratio(ours.p50, raw.p50), verdict(ours.p50.med <= 1.1*raw.p50.med), ratio(ours.p50, sshL.p50))
	for _, m := range []string{viaMaster, cliViaMasterL, cliViaMasterD} {
		if via, ok := r.ping[m]; ok {
			p("- p50 %s / `ssh -L` = %s (target ≤ 1.05×: %s).\n", m, ratio(via.p50, sshL.p50), verdict(via.p50.med <= 1.05*sshL.p50.med))
		}
	}
	p("%s\n", r.forwardRatios("- p50 ", func(m string) (stat, bool) { v, ok := r.ping[m]; return v.p50, ok }))
}

func (r *results) tunnelSection(p printf) {
	p("## Concurrent tunnels on one SSH connection\n\nThrough sshtest in the targets' process (OpenSSH's sshd slows down quadratically with thousands of channels: 10,000 did not finish in minutes). Opened by 32 dialers; memory (live heap plus goroutine stacks, after GC) and goroutines per idle tunnel, then after one 64-byte echo each; goroutines left 20 s after closing them all. One run each.\n\n")
	p("| tunnels | mode | open time | memory/tunnel idle | memory/tunnel after echo | goroutines/tunnel idle | after echo | left after Close |\n|---|---|---|---|---|---|---|---|\n")
	rawHeap := map[int]float64{}
	for _, t := range r.tunnels {
		p("| %d | %s | %v | %.0f B | %.0f B | %.1f | %.1f | %d |\n", t.n, t.mode, t.open.Round(1e6), t.heapIdle, t.heapAfterEcho, t.goroutines, t.goroutinesAfterEcho, t.leftAfterClose)
		if t.mode == "x/crypto raw" {
			rawHeap[t.n] = t.heapAfterEcho
		}
	}
	p("\n")
	for _, t := range r.tunnels {
		if t.mode == "sshdial" && rawHeap[t.n] > 0 {
			p("- %d tunnels: memory per tunnel sshdial / raw = %.2f× (target ≤ 2×: %s); goroutines left after Close: %d (target 0: %s).\n",
				t.n, t.heapAfterEcho/rawHeap[t.n], verdict(t.heapAfterEcho <= 2*rawHeap[t.n]), t.leftAfterClose, verdict(t.leftAfterClose == 0))
		}
	}
}

func (r *results) poolSection(p printf) {
	p("\n## Parallel transfers over a pool of SSH connections\n\n")
	p("%d transfers at once, each of 1/%d of %d MiB or what moved in %v, %s, through a Dialer (`NewPool`) of 1 and of 2 SSH connections to the same sshd; MB/s of all together.\n\n",
		parallelTransfers, parallelTransfers, r.size>>20, *flagMaxTime, ciphers[0])
	p("| SSH connections | upload MB/s | download MB/s |\n|---|---|---|\n")
	for _, size := range poolSizes {
		p("| %d | %s | %s |\n", size, r.pool[key("upload", strconv.Itoa(size))], r.pool[key("download", strconv.Itoa(size))])
	}
	one, two := strconv.Itoa(poolSizes[0]), strconv.Itoa(poolSizes[len(poolSizes)-1])
	p("\n- 2 SSH connections / 1: upload %s, download %s.\n",
		ratio(r.pool[key("upload", two)], r.pool[key("upload", one)]), ratio(r.pool[key("download", two)], r.pool[key("download", one)]))
}

// forwardRatios compares the forwarding processes, one line each for the
// pairs that ran: `ssh -D` / `ssh -L` (the cost of SOCKS5 on OpenSSH's
// side; not for dials, where they measure different things), the -cli
// modes and the x/crypto forwarder against OpenSSH's, and the -cli modes
// against the x/crypto forwarder.
func (r *results) forwardRatios(prefix string, value func(mode string) (stat, bool)) string {
	var b strings.Builder
	for _, pair := range [][2]string{{"ssh -D", "ssh -L"}, {"sshdial -L", "ssh -L"}, {"sshdial -D", "ssh -D"},
		{"x/crypto -L", "ssh -L"}, {"x/crypto -D", "ssh -D"}, {"sshdial -L", "x/crypto -L"}, {"sshdial -D", "x/crypto -D"},
		{viaMaster, "ssh -L"}, {muxRaw, "ssh -L"}, {viaMaster, "ssh -D"}, {viaMaster, muxRaw}, {viaMaster, "sshdial"},
		{cliViaMasterL, "ssh -L"}, {cliViaMasterD, "ssh -L"}, {cliViaMasterD, "ssh -D"}, {cliViaMasterL, "sshdial -L"}, {cliViaMasterD, "sshdial -D"}} {
		dial := strings.HasPrefix(prefix, "- dial")
		if dial && (pair[0] == "ssh -D" || (pair[1] == "ssh -L" && (pair[0] == viaMaster || pair[0] == muxRaw || pair[0] == cliViaMasterD))) {
			continue // ssh -L's dial is a local connect only
		}
		if !dial && pair == [2]string{viaMaster, "ssh -D"} {
			continue
		}
		a, okA := value(pair[0])
		c, okC := value(pair[1])
		if okA && okC {
			fmt.Fprintf(&b, "%s`%s` / `%s` = %s\n", prefix, pair[0], pair[1], ratio(a, c))
		}
	}
	return b.String()
}

// plot draws throughput (aes128-gcm) and latency p50 side by side.
func (r *results) plot(path string) error {
	const w, h = 900, 230
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	colors := map[string]color.RGBA{
		"sshdial":      {0x1f, 0x77, 0xb4, 0xff},
		"x/crypto raw": {0xff, 0x7f, 0x0e, 0xff},
		"ssh -L":       {0x2c, 0xa0, 0x2c, 0xff},
		"direct TCP":   {0x99, 0x99, 0x99, 0xff},
	}
	text := func(x, y int, s string) {
		d := &font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	bars := func(x0 int, title, unit string, groups []string, value func(group, mode string) float64) {
		text(x0, 20, title)
		var modes []string // those with a color: the plot has room for four
		for _, m := range r.modeOrder {
			if _, ok := colors[m]; ok {
				modes = append(modes, m)
			}
		}
		maxV := 0.0
		for _, g := range groups {
			for _, m := range modes {
				maxV = max(maxV, value(g, m))
			}
		}
		if maxV == 0 {
			return
		}
		y := 40
		for _, g := range groups {
			text(x0, y+10, g)
			y += 16
			for _, m := range modes {
				v := value(g, m)
				length := int(v / maxV * 260)
				c := colors[m]
				draw.Draw(img, image.Rect(x0+100, y, x0+100+length, y+12), &image.Uniform{c}, image.Point{}, draw.Src)
				text(x0, y+10, m)
				text(x0+105+length, y+10, fmt.Sprintf("%.0f %s", v, unit))
				y += 16
			}
			y += 10
		}
	}
	cipher := ciphers[0]
	bars(10, "Throughput, "+cipher+" (MB/s)", "MB/s", []string{"upload", "download"}, func(dir, m string) float64 {
		return r.throughput[key(cipher, dir, m)].med
	})
	bars(460, "Latency p50 (microseconds)", "us", []string{"dial", "64 B ping-pong"}, func(g, m string) float64 {
		if g == "dial" {
			return r.dial[m].p50.med
		}
		return r.ping[m].p50.med
	})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
