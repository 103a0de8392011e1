package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	pgevent "github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// Event is one Pipedrive event read the way the README recommends: who,
// what and when from the subject and the headers, which the gateway has
// checked and normalised (canonical company id, lower-case object, every
// timestamp form Pipedrive has used read into ce-time); the entity from
// the body.
type Event struct {
	Subject        string
	ID             string // Nats-Msg-Id (= ce-id): stable across Pipedrive's retries
	Action, Object string // pipedrive.<action>.<object>
	CompanyID      string
	EntityID       string // ce-subject
	Version        string // Pipedrive-Webhook-Version: "2.0" or "1.0"
	Attempt        int
	Time           time.Time // zero when Pipedrive's timestamp could not be read
	// Current and Previous are the entity after and before the event (v2
	// data and previous, v1 current and previous), as Pipedrive sent them.
	Current, Previous json.RawMessage
}

// body is the part of the body a consumer decodes. encoding/json into a
// struct is safe: the gateway refuses bodies whose keys could be read two
// ways (a key twice, or in other letter case).
type body struct {
	Data     json.RawMessage `json:"data"`    // v2
	Current  json.RawMessage `json:"current"` // v1
	Previous json.RawMessage `json:"previous"`
}

// Decode reads a message of the gateway's stream.
func Decode(subject string, h nats.Header, data []byte) (Event, error) {
	ev := Event{
		Subject:   subject,
		ID:        h.Get("Nats-Msg-Id"),
		CompanyID: h.Get(pgevent.HeaderCompanyID),
		EntityID:  h.Get("ce-subject"),
		Version:   h.Get(pgevent.HeaderWebhookVersion),
	}
	tokens := strings.Split(subject, ".")
	if len(tokens) < 3 {
		return ev, fmt.Errorf("subject %q is not <prefix>.<action>.<object>", subject)
	}
	ev.Action, ev.Object = tokens[len(tokens)-2], tokens[len(tokens)-1]
	ev.Attempt, _ = strconv.Atoi(h.Get(pgevent.HeaderAttempt))
	if t := h.Get("ce-time"); t != "" {
		var err error
		if ev.Time, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return ev, fmt.Errorf("ce-time: %w", err)
		}
	}
	var b body
	if err := json.Unmarshal(data, &b); err != nil {
		return ev, fmt.Errorf("body: %w", err)
	}
	ev.Current, ev.Previous = b.Data, b.Previous
	if ev.Version == "1.0" {
		ev.Current = b.Current
	}
	return ev, nil
}
