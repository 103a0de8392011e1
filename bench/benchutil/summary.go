package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// run is the part of a loadgen -json line the summary reads. run.sh labels
// each run "SYSTEM|SCENARIO|ROUND".
type run struct {
	Label   string  `json:"label"`
	OKRPS   float64 `json:"ok_rps"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	Non2xx  uint64  `json:"non_2xx"`
	Errors  uint64  `json:"errors"`
	Dropped uint64  `json:"dropped"`
	Verify  *struct {
		Missing uint64 `json:"missing"`
		Extra   uint64 `json:"extra"`
		Acked   uint64 `json:"acked"`
	} `json:"verify"`

	system, scenario string
	round            int
}

type group struct{ runs []run }

func (g *group) median(f func(run) float64) float64 {
	v := make([]float64, len(g.runs))
	for i, r := range g.runs {
		v[i] = f(r)
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

func summary(w io.Writer, resultsPath, rssPath string) error {
	f, err := os.Open(resultsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	groups := map[[2]string]*group{}
	var scenarios, systems []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r run
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", resultsPath, err)
		}
		parts := strings.Split(r.Label, "|")
		if len(parts) != 3 {
			continue
		}
		r.system, r.scenario = parts[0], parts[1]
		r.round, _ = strconv.Atoi(parts[2])
		if !slices.Contains(scenarios, r.scenario) {
			scenarios = append(scenarios, r.scenario)
		}
		if !slices.Contains(systems, r.system) {
			systems = append(systems, r.system)
		}
		k := [2]string{r.scenario, r.system}
		if groups[k] == nil {
			groups[k] = &group{}
		}
		groups[k].runs = append(groups[k].runs, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}

	fmt.Fprintln(w, "| scenario | system | rounds | 2xx req/s | p50 ms | p99 ms | max ms | non-2xx (median / total) | errors + dropped | stream check (rounds: missing / extra) |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, s := range scenarios {
		for _, sys := range systems {
			g := groups[[2]string{s, sys}]
			if g == nil {
				continue
			}
			var non2xx, errs uint64
			verified, missing, extra := 0, uint64(0), uint64(0)
			for _, r := range g.runs {
				non2xx += r.Non2xx
				errs += r.Errors + r.Dropped
				if r.Verify != nil {
					verified++
					missing += r.Verify.Missing
					extra += r.Verify.Extra
				}
			}
			check := "—"
			if verified > 0 {
				check = fmt.Sprintf("%d: %d / %d", verified, missing, extra)
			}
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.2f | %.2f | %.2f | %.0f / %d | %d | %s |\n", s, sys, len(g.runs),
				g.median(func(r run) float64 { return r.OKRPS }),
				g.median(func(r run) float64 { return r.P50 }),
				g.median(func(r run) float64 { return r.P99 }),
				g.median(func(r run) float64 { return r.Max }),
				g.median(func(r run) float64 { return float64(r.Non2xx) }), non2xx, errs, check)
		}
	}

	// Ratios: of the medians, and the median of the per-round ratios (each
	// round runs the systems back to back, so a per-round ratio cancels
	// slow drifts of the machine).
	ratio := func(s, a, b string, f func(run) float64) (ofMedians, medianOfRounds float64, ok bool) {
		ga, gb := groups[[2]string{s, a}], groups[[2]string{s, b}]
		if ga == nil || gb == nil {
			return 0, 0, false
		}
		mb := gb.median(f)
		if mb == 0 {
			return 0, 0, false
		}
		byRound := map[int]float64{}
		for _, r := range gb.runs {
			byRound[r.round] = f(r)
		}
		var rs []float64
		for _, r := range ga.runs {
			if v, ok := byRound[r.round]; ok && v > 0 {
				rs = append(rs, f(r)/v)
			}
		}
		return ga.median(f) / mb, median(rs), true
	}
	okrps := func(r run) float64 { return r.OKRPS }
	p99 := func(r run) float64 { return r.P99 }
	fmt.Fprintln(w)
	// "met" needs both measures on the right side of the target: on a
	// noisy machine they can disagree, and then the target is not shown met.
	fmt.Fprintln(w, "| ratio | of medians | median of per-round ratios | target | met (both) |")
	fmt.Fprintln(w, "|---|---:|---:|---|---|")
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	for _, s := range scenarios {
		if strings.HasPrefix(s, "c") {
			if a, b, ok := ratio(s, "gateway", "refrelay", okrps); ok {
				fmt.Fprintf(w, "| throughput gateway / refrelay, %s | %.3f | %.3f | ≥ 1.00 | %s |\n", s, a, b, verdict(a >= 1.0 && b >= 1.0))
			}
			if a, b, ok := ratio(s, "gateway", "noop", okrps); ok {
				fmt.Fprintf(w, "| throughput gateway / noop (HTTP ceiling), %s | %.3f | %.3f | — | — |\n", s, a, b)
			}
		}
	}
	for _, s := range scenarios {
		if strings.HasPrefix(s, "r") {
			if a, b, ok := ratio(s, "gateway", "refrelay", p99); ok {
				fmt.Fprintf(w, "| p99 gateway / refrelay, %s | %.3f | %.3f | ≤ 1.10 | %s |\n", s, a, b, verdict(a <= 1.1 && b <= 1.1))
			}
		}
	}

	if rssPath != "" {
		b, err := os.ReadFile(rssPath)
		if err != nil {
			return err
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| memory | MiB | target | met |")
		fmt.Fprintln(w, "|---|---:|---|---|")
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
			kib, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if !ok || err != nil {
				continue
			}
			target, met := "—", "—"
			if name == "gateway_rss_peak_open_loop" {
				target, met = "≤ 64", verdict(kib/1024 <= 64)
			}
			fmt.Fprintf(w, "| %s | %.1f | %s | %s |\n", name, kib/1024, target, met)
		}
	}
	return nil
}

// meanBody prints the mean body size over all runs (for nats bench --size).
func meanBody(w io.Writer, resultsPath string) error {
	b, err := os.ReadFile(resultsPath)
	if err != nil {
		return err
	}
	var sum float64
	var n int
	for _, line := range strings.Split(string(b), "\n") {
		var r struct {
			MeanBody float64 `json:"mean_body_bytes"`
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.MeanBody > 0 {
			sum += r.MeanBody
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no runs", resultsPath)
	}
	fmt.Fprintf(w, "%.0f\n", sum/float64(n))
	return nil
}
