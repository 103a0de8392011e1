package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one Pipedrive event ready to publish. The gateway fills it from
// the webhook payload; Body is published byte for byte.
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
)

// Subject is the subject an event is published on: <prefix>.<action>.<object>.
func (r *Relay) Subject(ev *Event) string {
	return r.cfg.SubjectPrefix + "." + ev.Action + "." + ev.Object
}

// Publish sends the event to JetStream and returns after the PubAck, or
// with an error wrapping ErrUnavailable once PUBLISH_TIMEOUT has passed or
// NATS cannot take the message.
func (r *Relay) Publish(ctx context.Context, ev *Event) (Ack, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout.D)
	defer cancel()
	msg := &nats.Msg{
		Subject: r.Subject(ev),
		Data:    ev.Body,
		Header:  Headers(ev),
	}
	ack, err := r.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(r.cfg.Name))
	if err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return Ack{}, fmt.Errorf("event too large for NATS: %w", err)
		}
		return Ack{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Ack{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// Headers builds the binary CloudEvents headers plus the Pipedrive specifics.
// Nats-Msg-Id is added by the publish itself.
func Headers(ev *Event) nats.Header {
	h := make(nats.Header, 14)
	h["ce-specversion"] = []string{"1.0"}
	h["ce-id"] = []string{ev.ID}
	h["ce-type"] = []string{"com.pipedrive." + ev.Object + "." + ev.Action}
	if ev.Host != "" {
		h["ce-source"] = []string{"https://" + ev.Host}
	} else {
		h["ce-source"] = []string{"pipedrive://company/" + ev.CompanyID}
	}
	if ev.EntityID != "" {
		h["ce-subject"] = []string{ev.EntityID}
	}
	if !ev.Time.IsZero() {
		h["ce-time"] = []string{ev.Time.UTC().Format(time.RFC3339Nano)}
	}
	h["Content-Type"] = []string{"application/json"}
	h[HeaderCompanyID] = []string{ev.CompanyID}
	if ev.WebhookID != "" {
		h[HeaderWebhookID] = []string{ev.WebhookID}
	}
	h[HeaderWebhookVersion] = []string{ev.Version}
	h[HeaderAttempt] = []string{strconv.Itoa(ev.Attempt)}
	return h
}
