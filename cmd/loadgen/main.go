// Command loadgen plays Pipedrive at high volume: it POSTs a realistic mix
// of v2 webhook events to a webhook receiver (the gateway, the reference
// relay in bench/refrelay, or the no-op server in bench/noop) and reports
// throughput and latency, optionally checking afterwards that the JetStream
// stream holds exactly one message per event that was answered 2xx.
//
// Closed loop (N workers, each sends its next request when the previous one
// is answered):
//
//	loadgen -url http://127.0.0.1:8080 -concurrency 64 -duration 10s
//
// Open loop (a fixed arrival schedule of R requests per second; latency is
// measured from each request's scheduled send time, so a stalled server
// shows as latency instead of as fewer requests — no coordinated omission):
//
//	loadgen -url http://127.0.0.1:8080 -rate 2000 -duration 10s
//
// Verification reads the stream after the run with an ordered,
// headers-only consumer starting after the last sequence seen before it:
//
//	loadgen ... -verify-nats nats://127.0.0.1:4222 -verify-stream PIPEDRIVE
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	url, company, user, password string
	concurrency                  int
	rate                         float64
	duration                     time.Duration
	maxOutstanding               int
	timeout                      time.Duration
	runID, label                 string
	jsonOut                      bool
	verifyNATS, verifyStream     string
	verifyTimeout                time.Duration
	purge                        bool
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of the receiver; requests go to URL/webhooks/pipedrive/COMPANY")
	flag.StringVar(&c.company, "company", "9912345", "company id in the path and in meta.company_id")
	flag.StringVar(&c.user, "user", "pipedrive", "Basic auth user")
	flag.StringVar(&c.password, "password", "change-me", "Basic auth password")
	flag.IntVar(&c.concurrency, "concurrency", 16, "closed loop: number of workers (ignored with -rate)")
	flag.Float64Var(&c.rate, "rate", 0, "open loop: requests per second on a fixed schedule (0 = closed loop)")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send")
	flag.IntVar(&c.maxOutstanding, "max-outstanding", 1024, "open loop: bound on requests in flight; an arrival beyond it is counted as dropped")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Second, "per-request timeout")
	flag.StringVar(&c.runID, "run-id", "", "8 hex digits prefixed to every meta.id (default random)")
	flag.StringVar(&c.label, "label", "", "free text copied into the report (e.g. the system under test)")
	flag.BoolVar(&c.jsonOut, "json", false, "also print the result as one JSON line")
	flag.StringVar(&c.verifyNATS, "verify-nats", "", "NATS URL: after the run, check the stream holds exactly one message per 2xx'd event")
	flag.StringVar(&c.verifyStream, "verify-stream", "PIPEDRIVE", "stream to verify (with -verify-nats)")
	flag.DurationVar(&c.verifyTimeout, "verify-timeout", 2*time.Minute, "bound on the verification read")
	flag.BoolVar(&c.purge, "purge", false, "purge the -verify-stream before the run (keeps the store small across rounds)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// result is the report, printed as text and, with -json, as one JSON line.
type result struct {
	Label       string        `json:"label,omitempty"`
	URL         string        `json:"url"`
	RunID       string        `json:"run_id"`
	Mode        string        `json:"mode"`
	Concurrency int           `json:"concurrency,omitempty"`
	Rate        float64       `json:"rate,omitempty"`
	Elapsed     float64       `json:"elapsed_s"`
	Requests    uint64        `json:"requests"`
	OK          uint64        `json:"ok"`
	Non2xx      uint64        `json:"non_2xx"`
	Errors      uint64        `json:"errors"`
	Dropped     uint64        `json:"dropped"`
	RPS         float64       `json:"rps"`
	OKRPS       float64       `json:"ok_rps"`
	BodyBytes   float64       `json:"mean_body_bytes"`
	P50         float64       `json:"p50_ms"`
	P90         float64       `json:"p90_ms"`
	P99         float64       `json:"p99_ms"`
	Max         float64       `json:"max_ms"`
	MaxAt       float64       `json:"max_at_s"`
	Mean        float64       `json:"mean_ms"`
	FirstErr    string        `json:"first_error,omitempty"`
	Verify      *verifyResult `json:"verify,omitempty"`
}

// state is shared by the workers of one run.
type state struct {
	c      config
	url    string
	header http.Header
	client *http.Client
	tpls   []template
	mix    []int
	hist   histogram
	start  time.Time

	seq                      atomic.Uint64
	ok, non2xx, errs, bytesN atomic.Uint64
	firstErr                 sync.Once
	firstErrMsg              string
	bufs                     sync.Pool

	mu    sync.Mutex
	okSeq [][]uint64 // per worker: sequence numbers answered 2xx
}

func run(ctx context.Context, c config, out io.Writer) error {
	if c.runID == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		c.runID = hex.EncodeToString(b[:])
	}
	if len(c.runID) != 8 || strings.Trim(strings.ToLower(c.runID), hexDigits) != "" {
		return errors.New("-run-id must be 8 hex digits")
	}
	c.runID = strings.ToLower(c.runID)
	if c.duration <= 0 || (c.rate <= 0 && c.concurrency <= 0) {
		return errors.New("need -duration > 0 and -concurrency > 0 or -rate > 0")
	}
	tpls, mix, err := buildTemplates(c.company, c.runID)
	if err != nil {
		return err
	}
	conns := c.concurrency
	if c.rate > 0 {
		conns = c.maxOutstanding
	}
	s := &state{
		c:    c,
		url:  strings.TrimRight(c.url, "/") + "/webhooks/pipedrive/" + c.company,
		tpls: tpls,
		mix:  mix,
		header: http.Header{
			"Content-Type":  {"application/json"},
			"User-Agent":    {"Pipedrive Webhooks"},
			"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password))},
		},
		client: &http.Client{
			Timeout: c.timeout,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:        conns + 16,
				MaxIdleConnsPerHost: conns + 16,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
				ForceAttemptHTTP2:   false,
			},
		},
	}

	var ver *verifier
	if c.verifyNATS != "" {
		if ver, err = newVerifier(ctx, c.verifyNATS, c.verifyStream, c.purge); err != nil {
			return err
		}
		defer ver.close()
	}

	runCtx, cancel := context.WithTimeout(ctx, c.duration+c.timeout+5*time.Second)
	defer cancel()
	start := time.Now()
	s.start = start
	var dropped uint64
	mode := "closed"
	if c.rate > 0 {
		mode = "open"
		dropped = s.openLoop(runCtx, start)
	} else {
		s.closedLoop(runCtx, start)
	}
	elapsed := time.Since(start)
	s.client.CloseIdleConnections()

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	requests := s.ok.Load() + s.non2xx.Load() + s.errs.Load()
	r := result{
		Label: c.label, URL: s.url, RunID: c.runID, Mode: mode,
		Elapsed:  elapsed.Seconds(),
		Requests: requests, OK: s.ok.Load(), Non2xx: s.non2xx.Load(), Errors: s.errs.Load(), Dropped: dropped,
		RPS:   float64(requests) / elapsed.Seconds(),
		OKRPS: float64(s.ok.Load()) / elapsed.Seconds(),
		P50:   ms(s.hist.quantile(0.50)), P90: ms(s.hist.quantile(0.90)), P99: ms(s.hist.quantile(0.99)),
		Max: ms(time.Duration(s.hist.max.Load())), MaxAt: s.hist.maxAt.Seconds(), Mean: ms(s.hist.mean()),
		FirstErr: s.firstErrMsg,
	}
	if requests > 0 {
		r.BodyBytes = float64(s.bytesN.Load()) / float64(requests)
	}
	if mode == "closed" {
		r.Concurrency = c.concurrency
	} else {
		r.Rate = c.rate
	}
	if ver != nil {
		var okSeqs []uint64
		for _, w := range s.okSeq {
			okSeqs = append(okSeqs, w...)
		}
		vctx, vcancel := context.WithTimeout(ctx, c.verifyTimeout)
		r.Verify, err = ver.check(vctx, idPrefix(c.runID), s.seq.Load(), okSeqs)
		vcancel()
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	printText(out, &r)
	if c.jsonOut {
		b, _ := json.Marshal(&r)
		fmt.Fprintf(out, "%s\n", b)
	}
	if r.Verify != nil && (r.Verify.Missing > 0 || r.Verify.Extra > 0) {
		return fmt.Errorf("stream %s: %d missing, %d extra", c.verifyStream, r.Verify.Missing, r.Verify.Extra)
	}
	return nil
}

func printText(w io.Writer, r *result) {
	what := fmt.Sprintf("closed loop, concurrency %d", r.Concurrency)
	if r.Mode == "open" {
		what = fmt.Sprintf("open loop, %.0f req/s scheduled", r.Rate)
	}
	fmt.Fprintf(w, "%s %s (%s) run %s, %.1fs, mean body %.0f B\n", r.Label, r.URL, what, r.RunID, r.Elapsed, r.BodyBytes)
	fmt.Fprintf(w, "  requests %d  2xx %d  non-2xx %d  errors %d  dropped %d\n", r.Requests, r.OK, r.Non2xx, r.Errors, r.Dropped)
	fmt.Fprintf(w, "  throughput %.0f req/s (2xx %.0f/s)\n", r.RPS, r.OKRPS)
	fmt.Fprintf(w, "  latency p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms (request due at +%.1fs)  mean %.2fms\n", r.P50, r.P90, r.P99, r.Max, r.MaxAt, r.Mean)
	if r.FirstErr != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstErr)
	}
	if v := r.Verify; v != nil {
		fmt.Fprintf(w, "  stream %s seq %d..%d: %d messages of this run, %d distinct; 2xx'd %d, missing %d, extra %d (duplicates %d, unknown ids %d), stored without 2xx %d, other messages %d\n",
			v.Stream, v.FirstSeq, v.LastSeq, v.RunMessages, v.Distinct, v.Acked, v.Missing, v.Extra, v.Duplicates, v.Unknown, v.StoredNotAcked, v.Foreign)
	}
}

// worker is one sender's private state: its body buffer and the sequence
// numbers it got a 2xx for.
