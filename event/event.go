// Package event is the one Pipedrive event as the ingress produces it and the
// relay stores it: routing fields, dedupe id and the body to publish byte for
// byte, plus the names of the message headers consumers read (SPEC §4).
//
// It is a leaf: it knows neither HTTP nor NATS, so the ingress and the
// backfill can build events without pulling in the relay's dependencies.
package event

import "time"

// Event is one Pipedrive event ready to publish.
type Event struct {
	Action    string // create, change or delete
	Object    string // deal, person, … (a safe subject token)
	ID        string // dedupe id, becomes Nats-Msg-Id and ce-id
	CompanyID string
	WebhookID string
	Version   string // "2.0" or "1.0"
	Attempt   int    // 1 = first delivery
	EntityID  string
	Time      time.Time
	Host      string // meta.host, e.g. acme.pipedrive.com; may be empty
	Body      []byte
	// Backfill is the run id of an event recovered from the Pipedrive API
	// (SPEC §8); empty for webhook deliveries. It becomes the
	// Pipedrive-Backfill header.
	Backfill string
}

// Ack is JetStream's acknowledgement of a publish.
type Ack struct {
	Stream    string
	Sequence  uint64
	Duplicate bool
}

// Header names of SPEC §4. NATS headers are case-sensitive, so these are
// written exactly as consumers read them.
const (
	HeaderCompanyID      = "Pipedrive-Company-Id"
	HeaderWebhookID      = "Pipedrive-Webhook-Id"
	HeaderWebhookVersion = "Pipedrive-Webhook-Version"
	HeaderAttempt        = "Pipedrive-Attempt"
	HeaderBackfill       = "Pipedrive-Backfill"
)

// HeaderCarrier lets an OpenTelemetry propagator read and write NATS
// message headers by their exact names. NATS header names are
// case-sensitive and messages carry traceparent in lower case, as W3C
// names it, while propagation.HeaderCarrier(http.Header(h)) looks for the
// canonical "Traceparent" and finds nothing. A consumer continues the
// gateway's trace with
//
//	ctx = otel.GetTextMapPropagator().Extract(ctx, event.HeaderCarrier(msg.Headers()))
//
// (nats.Header converts to it directly; this package imports neither NATS
// nor OpenTelemetry).
type HeaderCarrier map[string][]string

// Get returns the first value of key.
func (h HeaderCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (h HeaderCarrier) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
