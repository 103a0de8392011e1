package gateway

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the ingress's instruments. Label values are bounded: status
// codes, known reasons, (action, object) pairs capped at maxPairs, and
// company ids capped at maxCompanies.
type metrics struct {
	requests  metric.Int64Counter
	duration  metric.Float64Histogram
	received  metric.Int64Counter
	published metric.Int64Counter
	rejected  metric.Int64Counter
	failed    metric.Int64Counter
	latency   metric.Float64Histogram
	size      metric.Int64Histogram
	firstFail metric.Int64Counter

	// pairs and statuses are read on every request: immutable maps
	// swapped on a miss, so that reads take no lock and allocate nothing.
	pairs    atomic.Pointer[map[pairKey]*pairOpts]
	statuses atomic.Pointer[map[int]*statusOpts]

	mu        sync.Mutex // guards the swaps and companies
	companies map[string][]metric.AddOption
}

type pairKey struct{ action, object string }

// maxPairs bounds the (action, object) label pairs: Pipedrive adds entities
// now and then, but a flood of invented ones must not blow up memory.
const maxPairs = 256

// maxCompanies bounds the company ids of first_attempt_failures: with the
// static credentials any id is accepted.
const maxCompanies = 10000

// answeredStatuses are the answers of the ingress, counted from start so
// that rate() sees their first increase.
var answeredStatuses = []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound,
	http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable}

// durationBuckets are OpenTelemetry's advice for http.server.request.duration.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func newMetrics(mp metric.MeterProvider) *metrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/gateway")
	x := &metrics{companies: map[string][]metric.AddOption{}}
	x.pairs.Store(&map[pairKey]*pairOpts{})
	x.statuses.Store(&map[int]*statusOpts{})
	x.requests, _ = m.Int64Counter("pipedrive_gateway.webhook_requests", metric.WithDescription("Webhook requests answered, by HTTP status."))
	x.duration, _ = m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."), metric.WithExplicitBucketBoundaries(durationBuckets...))
	x.received, _ = m.Int64Counter("pipedrive_gateway.events_received", metric.WithDescription("Authenticated, well-formed events received, by action and object."))
	x.published, _ = m.Int64Counter("pipedrive_gateway.events_published", metric.WithDescription("Events acknowledged by JetStream, by action, object and whether JetStream saw a duplicate."))
	x.rejected, _ = m.Int64Counter("pipedrive_gateway.events_rejected", metric.WithDescription("Webhook requests refused, by reason."))
	x.failed, _ = m.Int64Counter("pipedrive_gateway.publish_errors", metric.WithDescription("Events not stored (NATS down or no ack in time): answered 503."))
	x.latency, _ = m.Float64Histogram("pipedrive_gateway.publish.duration", metric.WithUnit("s"), metric.WithDescription("Time from publish to JetStream ack."))
	x.size, _ = m.Int64Histogram("pipedrive_gateway.request.size", metric.WithUnit("By"), metric.WithDescription("Webhook body size."),
		metric.WithExplicitBucketBoundaries(512, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1048576))
	x.firstFail, _ = m.Int64Counter("pipedrive_gateway.first_attempt_failures",
		metric.WithDescription("Per company: authenticated first deliveries (meta.attempt 1, or an attempt the body did not tell) answered with a non-2xx. Pipedrive bans a webhook for 30 minutes after 10 of them; sum the replicas and take increase() over 30m."))
	ctx := context.Background()
	for _, code := range answeredStatuses {
		x.requests.Add(ctx, 0, x.status(code).count...)
	}
	for _, r := range rejections {
		x.rejected.Add(ctx, 0, reasonSets[r]...)
	}
	return x
}

// pairOpts are the attribute sets of one (action, object) pair, made once so
// that recording on the hot path does not allocate.
type pairOpts struct {
	// Slices, not single options: passing an existing slice to a
	// variadic parameter does not allocate one per call.
	plain, fresh, dup []metric.AddOption
}

func (x *metrics) pair(action, object string) *pairOpts {
	k := pairKey{action, object}
	if p, ok := (*x.pairs.Load())[k]; ok {
		return p
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	old := *x.pairs.Load()
	if p, ok := old[k]; ok {
		return p
	}
	if len(old) >= maxPairs {
		object = "other"
	}
	a, o := attribute.String("action", action), attribute.String("object", object)
	plain := metric.WithAttributeSet(attribute.NewSet(a, o))
	p := &pairOpts{
		plain: []metric.AddOption{plain},
		fresh: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(a, o, attribute.Bool("duplicate", false)))},
		dup:   []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(a, o, attribute.Bool("duplicate", true)))},
	}
	if len(old) < maxPairs {
		next := make(map[pairKey]*pairOpts, len(old)+1)
		for key, v := range old {
			next[key] = v
		}
		next[k] = p
		x.pairs.Store(&next)
	}
	return p
}

// statusOpts are the attribute sets of one answer status.
type statusOpts struct {
	count    []metric.AddOption
	duration []metric.RecordOption
}

func (x *metrics) status(code int) *statusOpts {
	if s, ok := (*x.statuses.Load())[code]; ok {
		return s
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	old := *x.statuses.Load()
	if s, ok := old[code]; ok {
		return s
	}
	// OpenTelemetry HTTP semantic conventions; error.type is the status
	// code for answers that are server errors.
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", http.MethodPost),
		attribute.String("http.route", webhookRoute),
		attribute.Int("http.response.status_code", code),
		attribute.String("url.scheme", "http"),
	}
	if code >= 500 {
		attrs = append(attrs, attribute.String("error.type", strconv.Itoa(code)))
	}
	s := &statusOpts{
		count:    []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.Int("status", code)))},
		duration: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))},
	}
	next := make(map[int]*statusOpts, len(old)+1)
	for c, v := range old {
		next[c] = v
	}
	next[code] = s
	x.statuses.Store(&next)
	return s
}

// answered counts an answer and its duration.
func (x *metrics) answered(ctx context.Context, code int, took time.Duration) {
	s := x.status(code)
	x.requests.Add(ctx, 1, s.count...)
	x.duration.Record(ctx, took.Seconds(), s.duration...)
}

// reasonSets are the rejection reasons, each with its attribute set made once.
var reasonSets = func() map[reason][]metric.AddOption {
	m := map[reason][]metric.AddOption{}
	for _, r := range rejections {
		m[r] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", string(r))))}
	}
	return m
}()

func (x *metrics) reject(ctx context.Context, r reason) {
	x.rejected.Add(ctx, 1, reasonSets[r]...)
}

var (
	okSet  = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "ok")))}
	errSet = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "error")))}
)

func (x *metrics) publishedEvent(ctx context.Context, p *pairOpts, duplicate bool, took time.Duration) {
	opt := p.fresh
	if duplicate {
		opt = p.dup
	}
	x.published.Add(ctx, 1, opt...)
	x.latency.Record(ctx, took.Seconds(), okSet...)
}

func (x *metrics) failedEvent(ctx context.Context, p *pairOpts, took time.Duration) {
	x.failed.Add(ctx, 1, p.plain...)
	x.latency.Record(ctx, took.Seconds(), errSet...)
}

// firstAttemptFailure counts a failed first delivery of a company. A
// counter, unlike a gauge kept in memory, adds up across replicas, and
// increase() bridges a restart.
func (x *metrics) firstAttemptFailure(ctx context.Context, companyID string) {
	x.mu.Lock()
	opt, ok := x.companies[companyID]
	if !ok {
		id := companyID
		if len(x.companies) >= maxCompanies {
			id = "other"
		}
		opt = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("company_id", id)))}
		if id != "other" {
			x.companies[companyID] = opt
		}
	}
	x.mu.Unlock()
	x.firstFail.Add(ctx, 1, opt...)
}
