package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// phase is what one start of the gateway cost.
type phase struct {
	took        time.Duration // until every webhook (first start) or /readyz 200 (restart)
	calls       map[string]pipedrivetest.Usage
	maxInFlight int
	gateway     usage
	bench       time.Duration // CPU of this process (the fake and the polling)
	machine     time.Duration // CPU of every process on the machine
	wall        time.Duration
}

type report struct {
	cfg                   config
	machine               machine
	loadBefore, loadAfter string
	connect, restart      phase
	exactlyOne            int
	stopped               time.Duration // SIGTERM to exit after the first start
	maxListsPerCompany    int
}

func (b *bench) measure(ctx context.Context) (*report, error) {
	r := &report{cfg: b.cfg, machine: describeMachine(), loadBefore: loadAverage()}

	fmt.Fprintf(b.log, "scale: connecting %d companies (fake latency %v)\n", b.cfg.companies, b.cfg.latency)
	p := b.begin()
	g, err := b.start()
	if err != nil {
		return nil, err
	}
	took, err := b.waitWebhooks(ctx, g, p.start)
	if err != nil {
		_ = g.stop()
		return nil, err
	}
	r.connect = b.end(p, g, took)
	r.exactlyOne = b.exactlyOne()
	stopAt := time.Now()
	if err := g.stop(); err != nil {
		return nil, fmt.Errorf("stopping the gateway: %w", err)
	}
	r.stopped = time.Since(stopAt)

	fmt.Fprintf(b.log, "scale: restarting; watching the API for %v\n", b.cfg.watch)
	before := b.spent()
	b.fake.ResetCalls()
	b.fake.ResetMaxInFlight()
	p = b.begin()
	g, err = b.start()
	if err != nil {
		return nil, err
	}
	ready, err := b.waitReady(ctx, g, p.start)
	if err != nil {
		_ = g.stop()
		return nil, err
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(p.start.Add(b.cfg.watch))):
	}
	r.restart = b.end(p, g, ready)
	after := b.spent()
	for i := range after {
		// A list costs 10 tokens (pipedrive.md §6).
		r.maxListsPerCompany = max(r.maxListsPerCompany, (after[i]-before[i])/10)
	}
	if err := g.stop(); err != nil {
		return nil, fmt.Errorf("stopping the gateway: %w", err)
	}
	r.loadAfter = loadAverage()
	return r, ctx.Err()
}

type begun struct {
	start          time.Time
	self, machine0 time.Duration
}

func (b *bench) begin() begun {
	self, _ := readUsage(os.Getpid())
	return begun{start: time.Now(), self: self.CPU, machine0: machineCPU()}
}

func (b *bench) end(p begun, g *gateway, took time.Duration) phase {
	gu, err := readUsage(g.pid())
	if err != nil {
		fmt.Fprintln(b.log, "scale: cannot read the gateway's /proc:", err)
	}
	b.runtimeStats() // after: a scrape makes the per-company gauges
	self, _ := readUsage(os.Getpid())
	return phase{
		took: took, calls: b.fake.Usage(), maxInFlight: b.fake.MaxInFlight(), gateway: gu,
		bench: self.CPU - p.self, machine: machineCPU() - p.machine0, wall: time.Since(p.start),
	}
}

func calls(u map[string]pipedrivetest.Usage, route string) int { return u[route].Calls }

func total(u map[string]pipedrivetest.Usage) int {
	n := 0
	for _, v := range u {
		n += v.Calls
	}
	return n
}

func (r *report) print(w io.Writer) {
	conc := "default"
	if r.cfg.concurrency > 0 {
		conc = fmt.Sprint(r.cfg.concurrency)
	}
	natsMode := "embedded NATS"
	if r.cfg.externalNATS {
		natsMode = "external NATS (in the bench process)"
	}
	fmt.Fprintf(w, "## Scale: %d companies, fake API latency %v, RECONCILE_CONCURRENCY %s, %s\n\n", r.cfg.companies, r.cfg.latency, conc, natsMode)
	fmt.Fprintf(w, "machine: %s, %d CPUs; load average %s before, %s after\n\n", r.machine.Model, r.machine.CPUs, r.loadBefore, r.loadAfter)
	c, s := r.connect, r.restart
	rows := [][2]string{
		{"every webhook registered after", c.took.Round(100 * time.Millisecond).String()},
		{"API calls", fmt.Sprintf("%d (users/me %d, list %d, create %d, delete %d)", total(c.calls),
			calls(c.calls, pipedrive.RouteMe), calls(c.calls, pipedrive.RouteListWebhooks),
			calls(c.calls, pipedrive.RouteCreateWebhook), calls(c.calls, pipedrive.RouteDeleteWebhook))},
		{"calls in flight at the fake, at most", fmt.Sprint(c.maxInFlight)},
		{"companies with exactly one webhook", fmt.Sprintf("%d / %d", r.exactlyOne, r.cfg.companies)},
		{"gateway RSS: peak (VmHWM) / at the end (VmRSS)", mib(c.gateway.HWM) + " / " + mib(c.gateway.RSS)},
		{"of which at the end: anonymous / mapped files (the binary)", mib(c.gateway.Anon) + " / " + mib(c.gateway.File)},
		{"gateway CPU (user + sys)", cpu(c.gateway.CPU, c.wall)},
		{"machine CPU meanwhile: gateway / fake + bench / everything else", machineShare(c)},
		{"stop (SIGTERM to exit)", r.stopped.Round(time.Millisecond).String()},
		{"restart: /users/me calls", fmt.Sprint(calls(s.calls, pipedrive.RouteMe))},
		{"restart: /readyz 200 after", s.took.Round(10 * time.Millisecond).String()},
		{fmt.Sprintf("restart: API calls in the first %v", r.cfg.watch), fmt.Sprintf("%d (list %d, create %d, delete %d); at most %d list(s) for one company",
			total(s.calls), calls(s.calls, pipedrive.RouteListWebhooks), calls(s.calls, pipedrive.RouteCreateWebhook),
			calls(s.calls, pipedrive.RouteDeleteWebhook), r.maxListsPerCompany)},
		{"restart: gateway RSS peak / CPU", mib(s.gateway.HWM) + " / " + cpu(s.gateway.CPU, s.wall)},
	}
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "|---|---|")
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", row[0], row[1])
	}
	fmt.Fprintf(w, "\nrow for the README: | %d | %v | %s | %s / %s | %s | %d | %s |\n",
		r.cfg.companies, c.took.Round(100*time.Millisecond), mib(c.gateway.HWM), cpu(c.gateway.CPU, 0), cpu(c.machine, 0),
		fmt.Sprint(total(c.calls)), calls(s.calls, pipedrive.RouteMe), s.took.Round(10*time.Millisecond))
}

func cpu(d, wall time.Duration) string {
	s := fmt.Sprintf("%.1f s", d.Seconds())
	if wall > 0 {
		s += fmt.Sprintf(" (%.0f %% of one core over %v)", 100*d.Seconds()/wall.Seconds(), wall.Round(100*time.Millisecond))
	}
	return s
}

func machineShare(p phase) string {
	other := max(p.machine-p.gateway.CPU-p.bench, 0)
	return fmt.Sprintf("%.1f s / %.1f s / %.1f s (of %.1f s available)", p.gateway.CPU.Seconds(), p.bench.Seconds(), other.Seconds(),
		p.wall.Seconds()*float64(describeMachine().CPUs))
}

// runtimeStats logs the gateway's own view of its memory (Go runtime
// metrics on /metrics), to tell the heap from the rest of the RSS.
func (b *bench) runtimeStats() {
	resp, err := http.Get(b.ops + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		for _, name := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_heap_alloc_bytes ", "go_memstats_stack_inuse_bytes ", "go_memstats_sys_bytes ", "go_goroutines ", "go_memstats_next_gc_bytes "} {
			if strings.HasPrefix(line, name) {
				fmt.Fprintln(b.log, "scale: gateway", line)
			}
		}
	}
}
