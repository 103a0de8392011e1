package backfill

import (
	"context"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics receives what the backfill measures, by company.
type Metrics interface {
	// GapOpened counts a gap recorded for a reason.
	GapOpened(company int64, reason string)
	// RunEnded counts a run by its final state.
	RunEnded(company int64, state string)
	// Event counts a recovered event (duplicate: JetStream had it already).
	Event(company int64, action, object string, duplicate bool)
	// Tokens counts API tokens spent.
	Tokens(company int64, n int)
	// OpenGaps reports the gaps not ended yet, by company (leader's sweep).
	OpenGaps(byCompany map[int64]int)
}

type noMetrics struct{}

func (noMetrics) GapOpened(int64, string)           {}
func (noMetrics) RunEnded(int64, string)            {}
func (noMetrics) Event(int64, string, string, bool) {}
func (noMetrics) Tokens(int64, int)                 {}
func (noMetrics) OpenGaps(map[int64]int)            {}

// OTelMetrics implements Metrics with OpenTelemetry instruments.
type OTelMetrics struct {
	gaps, runs, events, tokens metric.Int64Counter

	mu    sync.Mutex
	open  map[int64]int
	known map[int64]bool // companies whose run counters exist
}

// NewOTelMetrics creates the instruments on mp.
func NewOTelMetrics(mp metric.MeterProvider) *OTelMetrics {
	m := mp.Meter("github.com/pipedrive-gateway/pipedrive-gateway/backfill")
	x := &OTelMetrics{open: map[int64]int{}, known: map[int64]bool{}}
	x.gaps, _ = m.Int64Counter("pipedrive_gateway.backfill.gaps", metric.WithDescription("Gaps recorded, by company and reason (outage, failed_first_attempt, retried_delivery, webhook_*, second_pass, manual)."))
	x.runs, _ = m.Int64Counter("pipedrive_gateway.backfill.runs", metric.WithDescription("Backfill runs ended, by company and result (recovered, incomplete, failed)."))
	x.events, _ = m.Int64Counter("pipedrive_gateway.backfill.events", metric.WithDescription("Recovered events published, by company, action, object and whether JetStream already had them (duplicate)."))
	x.tokens, _ = m.Int64Counter("pipedrive_gateway.backfill.tokens", metric.WithDescription("Pipedrive API tokens spent by backfill runs, by company."))
	_, _ = m.Int64ObservableGauge("pipedrive_gateway.backfill.open_gaps", metric.WithDescription("Gaps not ended yet (open or running), by company; reported by the leader."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			for c, n := range x.open {
				o.Observe(int64(n), metric.WithAttributes(companyAttr(c)))
			}
			return nil
		}))
	return x
}

func companyAttr(c int64) attribute.KeyValue {
	return attribute.String("company_id", strconv.FormatInt(c, 10))
}

// GapOpened implements Metrics. A company's first gap also makes its run
// counters exist at 0, so that rate() and increase() see the first run end.
func (x *OTelMetrics) GapOpened(c int64, reason string) {
	ctx := context.Background()
	x.mu.Lock()
	first := !x.known[c]
	x.known[c] = true
	x.mu.Unlock()
	if first {
		for _, r := range []string{StateRecovered, StateIncomplete, StateFailed} {
			x.runs.Add(ctx, 0, metric.WithAttributes(companyAttr(c), attribute.String("result", r)))
		}
	}
	x.gaps.Add(ctx, 1, metric.WithAttributes(companyAttr(c), attribute.String("reason", reason)))
}

// RunEnded implements Metrics.
func (x *OTelMetrics) RunEnded(c int64, state string) {
	x.runs.Add(context.Background(), 1, metric.WithAttributes(companyAttr(c), attribute.String("result", state)))
}

// Event implements Metrics.
func (x *OTelMetrics) Event(c int64, action, object string, duplicate bool) {
	x.events.Add(context.Background(), 1, metric.WithAttributes(companyAttr(c),
		attribute.String("action", action), attribute.String("object", object), attribute.Bool("duplicate", duplicate)))
}

// Tokens implements Metrics.
func (x *OTelMetrics) Tokens(c int64, n int) {
	x.tokens.Add(context.Background(), int64(n), metric.WithAttributes(companyAttr(c)))
}

// OpenGaps implements Metrics.
func (x *OTelMetrics) OpenGaps(byCompany map[int64]int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for c := range x.open {
		x.open[c] = 0 // keep reporting 0 once a company had gaps
	}
	for c, n := range byCompany {
		x.open[c] = n
	}
}
