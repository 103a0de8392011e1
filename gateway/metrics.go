package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the ingress's instruments. Label values are bounded: status
// codes, known reasons, and (action, object) pairs capped at maxPairs.
type metrics struct {
	requests  metric.Int64Counter
	received  metric.Int64Counter
	published metric.Int64Counter
	rejected  metric.Int64Counter
	failed    metric.Int64Counter
	latency   metric.Float64Histogram
	size      metric.Int64Histogram

	// pairs and statuses are read on every request: immutable maps
	// swapped on a miss, so that reads take no lock and allocate nothing.
	pairs    atomic.Pointer[map[pairKey]*pairOpts]
	statuses atomic.Pointer[map[int][]metric.AddOption]

	mu      sync.Mutex // guards the swaps and retries
	retries map[string]*window
}

type pairKey struct{ action, object string }

// maxPairs bounds the (action, object) label pairs: Pipedrive adds entities
// now and then, but a flood of invented ones must not blow up memory.
const maxPairs = 256

func newMetrics(mp metric.MeterProvider) *metrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/gateway")
	x := &metrics{retries: map[string]*window{}}
	x.pairs.Store(&map[pairKey]*pairOpts{})
	x.statuses.Store(&map[int][]metric.AddOption{})
	x.requests, _ = m.Int64Counter("pipedrive_gateway.webhook_requests", metric.WithDescription("Webhook requests answered, by HTTP status."))
	x.received, _ = m.Int64Counter("pipedrive_gateway.events_received", metric.WithDescription("Authenticated, well-formed events received, by action and object."))
	x.published, _ = m.Int64Counter("pipedrive_gateway.events_published", metric.WithDescription("Events acknowledged by JetStream, by action, object and whether JetStream saw a duplicate."))
	x.rejected, _ = m.Int64Counter("pipedrive_gateway.events_rejected", metric.WithDescription("Webhook requests refused, by reason."))
	x.failed, _ = m.Int64Counter("pipedrive_gateway.publish_errors", metric.WithDescription("Events not stored (NATS down or no ack in time): answered 503."))
	x.latency, _ = m.Float64Histogram("pipedrive_gateway.publish.duration", metric.WithUnit("s"), metric.WithDescription("Time from publish to JetStream ack."))
	x.size, _ = m.Int64Histogram("pipedrive_gateway.request.size", metric.WithUnit("By"), metric.WithDescription("Webhook body size."),
		metric.WithExplicitBucketBoundaries(512, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1048576))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.first_attempt_failures",
		metric.WithDescription("Per company: events seen in the last 30 minutes whose first delivery failed (meta.attempt 2). Pipedrive bans a webhook for 30 minutes after 10 first-attempt failures."),
		metric.WithInt64Callback(x.observeRetries))
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

func (x *metrics) status(ctx context.Context, code int) {
	opt, ok := (*x.statuses.Load())[code]
	if !ok {
		x.mu.Lock()
		old := *x.statuses.Load()
		if opt, ok = old[code]; !ok {
			opt = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.Int("status", code)))}
			next := make(map[int][]metric.AddOption, len(old)+1)
			for c, v := range old {
				next[c] = v
			}
			next[code] = opt
			x.statuses.Store(&next)
		}
		x.mu.Unlock()
	}
	x.requests.Add(ctx, 1, opt...)
}

// reasonSets are the rejection reasons, each with its attribute set made once.
var reasonSets = func() map[string][]metric.AddOption {
	m := map[string][]metric.AddOption{}
	for _, r := range []string{"unauthorized", "invalid_payload", "company_mismatch", "too_large", "not_found"} {
		m[r] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))}
	}
	return m
}()

func (x *metrics) reject(ctx context.Context, reason string) {
	x.rejected.Add(ctx, 1, reasonSets[reason]...)
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

// window counts first-attempt failures per company in one-minute buckets
// over the last 30 minutes.
type window struct {
	buckets [30]int64
	minute  [30]int64
}

func (x *metrics) retry(companyID string, now time.Time) {
	m := now.Unix() / 60
	x.mu.Lock()
	defer x.mu.Unlock()
	w, ok := x.retries[companyID]
	if !ok {
		if len(x.retries) >= 10000 { // bounded even with static credentials
			return
		}
		w = &window{}
		x.retries[companyID] = w
	}
	i := m % 30
	if w.minute[i] != m {
		w.minute[i], w.buckets[i] = m, 0
	}
	w.buckets[i]++
}

func (x *metrics) observeRetries(_ context.Context, o metric.Int64Observer) error {
	now := time.Now().Unix() / 60
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, w := range x.retries {
		var n int64
		for i := range w.buckets {
			if now-w.minute[i] < 30 {
				n += w.buckets[i]
			}
		}
		o.Observe(n, metric.WithAttributes(attribute.String("company_id", id)))
		if n == 0 {
			delete(x.retries, id) // quiet companies drop out of the gauge
		}
	}
	return nil
}
