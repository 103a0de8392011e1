package subscriptions

import (
	"context"
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
	// Companies reports every company (the leader's periodic scan).
	Companies(cs []View)
	// Records reports, from the same scan, the records still sealed under
	// a previous key (or in the first format) and the unreadable ones.
	Records(oldKey, unreadable int)
}

type noMetrics struct{}

func (noMetrics) Reconciled(string, time.Duration) {}
func (noMetrics) Leader(bool)                      {}
func (noMetrics) Company(View)                     {}
func (noMetrics) Companies([]View)                 {}
func (noMetrics) Records(int, int)                 {}

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

	mu        sync.Mutex
	leader    bool
	companies map[int64]companyGauge
	limits    map[int64]pipedrive.RateLimit
	records   [2]int64 // old key, unreadable
}

type companyGauge struct {
	state   string
	healthy bool
}

// NewOTelMetrics creates the instruments on mp.
func NewOTelMetrics(mp metric.MeterProvider) *OTelMetrics {
	m := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/subscriptions")
	x := &OTelMetrics{companies: map[int64]companyGauge{}, limits: map[int64]pipedrive.RateLimit{}}
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

// Companies implements Metrics.
func (x *OTelMetrics) Companies(cs []View) {
	m := make(map[int64]companyGauge, len(cs))
	for _, c := range cs {
		m[c.CompanyID] = gaugeOf(c)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.companies = m
	for id := range x.limits {
		if _, ok := m[id]; !ok {
			delete(x.limits, id)
		}
	}
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
	return companyGauge{state: c.State, healthy: ok}
}

// APIResponse is the Pipedrive client's OnResponse hook.
func (x *OTelMetrics) APIResponse(ctx context.Context, route string, status int, rl pipedrive.RateLimit) {
	x.calls.Add(ctx, 1, metric.WithAttributes(attribute.String("route", route), attribute.Int("status", status)))
	if id, ok := companyFrom(ctx); ok && status != 0 {
		x.mu.Lock()
		x.limits[id] = rl
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
		counts[g.state]++
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
		if rl.Remaining >= 0 {
			o.Observe(int64(rl.Remaining), metric.WithAttributes(cid, attribute.String("window", "burst")))
		}
		if rl.DailyRemaining >= 0 {
			o.Observe(int64(rl.DailyRemaining), metric.WithAttributes(cid, attribute.String("window", "daily")))
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
