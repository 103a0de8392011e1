package subscriptions

import "time"

// Metrics receives what the subscription side measures; the service wires
// it to OpenTelemetry instruments.
type Metrics interface {
	// Reconciled is called after every run with its outcome: ok, error,
	// retry (an error that backs off) or gone.
	Reconciled(outcome string, took time.Duration)
	// Leader is called when this replica gains or loses the lead.
	Leader(leader bool)
	// CompanyWebhook reports one company's webhook as last seen.
	CompanyWebhook(c *Company)
	// WebhookStates reports how many companies are in each state.
	WebhookStates(counts map[string]int)
}

type noMetrics struct{}

func (noMetrics) Reconciled(string, time.Duration) {}
func (noMetrics) Leader(bool)                      {}
func (noMetrics) CompanyWebhook(*Company)          {}
func (noMetrics) WebhookStates(map[string]int)     {}

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
