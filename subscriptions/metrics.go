package subscriptions

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// Metrics receives what the subscription side measures.
type Metrics interface {
	// Reconciled is called after every run with its outcome: ok, error
	// (waits for the resync), retry (backs off) or gone.
	Reconciled(outcome string, took time.Duration)
	// Leader is called when this replica gains or loses the lead.
	Leader(leader bool)
	// Company reports one company as just reconciled.
	Company(c View)
	// CompanyGone reports a company that was disconnected.
	CompanyGone(id int64)
	// Records reports the records still sealed under a previous key (or
	// in the first format) and the unreadable ones (the leader's scan at
	// its start and every RESYNC_INTERVAL, and every 30 s while records
	// under an old key are left).
	Records(oldKey, unreadable int)
	// APITokens gives, once, what counts the PIPEDRIVE_API_TOKENS entries
	// by state (connected, pending, error).
	APITokens(count func() map[string]int64)
}

type noMetrics struct{}

func (noMetrics) Reconciled(string, time.Duration)  {}
func (noMetrics) Leader(bool)                       {}
func (noMetrics) Company(View)                      {}
func (noMetrics) CompanyGone(int64)                 {}
func (noMetrics) Records(int, int)                  {}
func (noMetrics) APITokens(func() map[string]int64) {}

func (r result) outcome() string {
	switch {
	case r.gone:
		return "gone"
	case r.err == nil:
		return "ok"
	case r.permanent:
		return "error"
	}
	return "retry"
}

// OTelMetrics implements Metrics with OpenTelemetry instruments, and
// counts Pipedrive API calls through APIResponse (the client's OnResponse).
type OTelMetrics struct {
	runs     metric.Int64Counter
	duration metric.Float64Histogram
	calls    metric.Int64Counter

	mu      sync.Mutex
	leader  bool
	records [2]int64 // old key, unreadable
	tokens  func() map[string]int64

	// Per company, small and pointer-free: 100,000 companies are a few
	// megabytes and nothing for the garbage collector to scan.
	companies map[int64]companyGauge
	limits    map[int64]budgets
}

type companyGauge struct {
	state   uint8 // index in states
	healthy bool
}

// states are the webhook states, by companyGauge.state.
var states = [...]string{store.StateOK, store.StatePending, store.StateError}

func stateCode(state string) uint8 {
	for i, s := range states {
		if s == state {
			return uint8(i)
		}
	}
	return uint8(slices.Index(states[:], store.StateError)) // unknown: not healthy either
}

// budgets are what Pipedrive last reported a company has left (-1: not
// reported): requests in the burst window, tokens for the day.
type budgets struct{ burst, daily int32 }

// NewOTelMetrics creates the instruments on mp.
func NewOTelMetrics(mp metric.MeterProvider) *OTelMetrics {
	m := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/subscriptions")
	x := &OTelMetrics{companies: map[int64]companyGauge{}, limits: map[int64]budgets{}}
	x.runs, _ = m.Int64Counter("pipedrive_gateway.reconcile_runs", metric.WithDescription("Reconcile runs by result: ok, retry (backing off), error (waits for the resync), gone."))
	x.duration, _ = m.Float64Histogram("pipedrive_gateway.reconcile.duration", metric.WithUnit("s"), metric.WithDescription("Duration of reconcile runs."))
	x.calls, _ = m.Int64Counter("pipedrive_gateway.pipedrive_api_calls", metric.WithDescription("Pipedrive API calls by route template and HTTP status (0 = no response)."))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.leader", metric.WithDescription("1 on the replica that holds the reconcile lease."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			o.Observe(boolInt(x.leader))
			return nil
		}))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.webhooks", metric.WithDescription("Companies by webhook state (ok, pending, error); reported by the leader."),
		metric.WithInt64Callback(x.observeStates))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.company_webhook_healthy", metric.WithDescription("Per company: 1 when the last reconcile succeeded and Pipedrive's last delivery status is 2xx (or none yet); reported by the leader."),
		metric.WithInt64Callback(x.observeHealth))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.company_records", metric.WithDescription("Company records by key: old_key (still sealed under a STATE_KEY_PREVIOUS key, or in the first format; 0 once a rotation is done) and unreadable (changed outside the gateway, or sealed with an unknown key); reported by the leader."),
		metric.WithInt64Callback(x.observeRecords))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.pipedrive_ratelimit_remaining", metric.WithDescription("Per company: requests left in Pipedrive's rate-limit window (burst) and daily token budget (daily), from the last API response."),
		metric.WithInt64Callback(x.observeLimits))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.api_tokens", metric.WithDescription("PIPEDRIVE_API_TOKENS entries by state: connected, pending (retried with back-off), error (refused by Pipedrive; retried at the next resync); reported by the leader."),
		metric.WithInt64Callback(x.observeTokens))
	return x
}

var outcomeSets = func() map[string]metric.MeasurementOption {
	m := map[string]metric.MeasurementOption{}
	for _, o := range []string{"ok", "retry", "error", "gone"} {
		m[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", o)))
	}
	return m
}()

// Reconciled implements Metrics.
func (x *OTelMetrics) Reconciled(outcome string, took time.Duration) {
	ctx := context.Background()
	x.runs.Add(ctx, 1, outcomeSets[outcome])
	x.duration.Record(ctx, took.Seconds(), outcomeSets[outcome])
}

// Leader implements Metrics. A replica that loses the lead stops reporting
// company gauges, which the new leader reports.
func (x *OTelMetrics) Leader(leader bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.leader = leader
	if !leader {
		x.companies = map[int64]companyGauge{}
	}
}

// Company implements Metrics.
func (x *OTelMetrics) Company(c View) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.companies[c.CompanyID] = gaugeOf(c)
}

// CompanyGone implements Metrics.
func (x *OTelMetrics) CompanyGone(id int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.companies, id)
	delete(x.limits, id)
}

// APITokens implements Metrics.
func (x *OTelMetrics) APITokens(count func() map[string]int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.tokens = count
}

func (x *OTelMetrics) observeTokens(_ context.Context, o metric.Int64Observer) error {
	x.mu.Lock()
	leader, count := x.leader, x.tokens
	x.mu.Unlock()
	if !leader || count == nil {
		return nil
	}
	for state, n := range count() {
		o.Observe(n, metric.WithAttributes(attribute.String("state", state)))
	}
	return nil
}

// Records implements Metrics.
func (x *OTelMetrics) Records(oldKey, unreadable int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.records = [2]int64{int64(oldKey), int64(unreadable)}
}

var recordSets = [2]metric.ObserveOption{
	metric.WithAttributeSet(attribute.NewSet(attribute.String("key", "old_key"))),
	metric.WithAttributeSet(attribute.NewSet(attribute.String("key", "unreadable"))),
}

func (x *OTelMetrics) observeRecords(_ context.Context, o metric.Int64Observer) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.leader {
		return nil
	}
	for i, n := range x.records {
		o.Observe(n, recordSets[i])
	}
	return nil
}

func gaugeOf(c View) companyGauge {
	ok := c.State == store.StateOK
	if s := c.LastHTTPStatus; s != nil && (*s < 200 || *s > 299) {
		ok = false
	}
	return companyGauge{state: stateCode(c.State), healthy: ok}
}

// APIResponse is the Pipedrive client's OnResponse hook.
func (x *OTelMetrics) APIResponse(ctx context.Context, route string, status int, rl pipedrive.RateLimit) {
	x.calls.Add(ctx, 1, metric.WithAttributes(attribute.String("route", route), attribute.Int("status", status)))
	if id, ok := companyFrom(ctx); ok && status != 0 {
		x.mu.Lock()
		x.limits[id] = budgets{burst: int32(rl.Remaining), daily: int32(rl.DailyRemaining)}
		x.mu.Unlock()
	}
}

func (x *OTelMetrics) observeStates(_ context.Context, o metric.Int64Observer) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.leader {
		return nil
	}
	counts := map[string]int64{store.StateOK: 0, store.StatePending: 0, store.StateError: 0}
	for _, g := range x.companies {
		counts[states[g.state]]++
	}
	for state, n := range counts {
		o.Observe(n, metric.WithAttributes(attribute.String("state", state)))
	}
	return nil
}

func (x *OTelMetrics) observeHealth(_ context.Context, o metric.Int64Observer) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, g := range x.companies {
		o.Observe(boolInt(g.healthy), metric.WithAttributes(attribute.String("company_id", strconv.FormatInt(id, 10))))
	}
	return nil
}

func (x *OTelMetrics) observeLimits(_ context.Context, o metric.Int64Observer) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, rl := range x.limits {
		cid := attribute.String("company_id", strconv.FormatInt(id, 10))
		if rl.burst >= 0 {
			o.Observe(int64(rl.burst), metric.WithAttributes(cid, attribute.String("window", "burst")))
		}
		if rl.daily >= 0 {
			o.Observe(int64(rl.daily), metric.WithAttributes(cid, attribute.String("window", "daily")))
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

type companyKeyType struct{}

// withCompany tags ctx with the company an API call is made for.
func withCompany(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, companyKeyType{}, id)
}

func companyFrom(ctx context.Context) (int64, bool) {
	id, ok := ctx.Value(companyKeyType{}).(int64)
	return id, ok
}
