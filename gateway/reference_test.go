package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// envelope holds the few top-level fields needed to tell v1 from v2. The
// rest of the body (data, previous, current) is skipped, not decoded: it is
// published as it came.
type refEnvelope struct {
	V     refFlex  `json:"v"`
	Event string   `json:"event"`
	Retry *int     `json:"retry"`
	Meta  *refMeta `json:"meta"`
}

type refMeta struct {
	// v2
	Action    string  `json:"action"`
	Entity    string  `json:"entity"`
	EntityID  refFlex `json:"entity_id"`
	Version   refFlex `json:"version"`
	Attempt   refFlex `json:"attempt"`
	Timestamp refFlex `json:"timestamp"`
	// v1 (id is the object's id there, an event id in v2)
	Object         string  `json:"object"`
	MetaV          refFlex `json:"v"`
	TimestampMicro refFlex `json:"timestamp_micro"`
	// both
	ID        refFlex `json:"id"`
	CompanyID refFlex `json:"company_id"`
	WebhookID refFlex `json:"webhook_id"`
	Host      string  `json:"host"`
}

// refFlex accepts a JSON string or number (Pipedrive sends ids as either,
// depending on version and entity) and keeps its text. null is empty.
type refFlex string

func (f *refFlex) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = refFlex(s)
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*f = refFlex(b)
	default:
		return errors.New("want a string or a number")
	}
	return nil
}

// referenceParse is the first parser, on encoding/json, kept as the oracle
// for FuzzScan. It reads a webhook body (v2 or v1) delivered for companyID and returns
// the event to publish, or a *PayloadError. Body is referenced, not copied.
func referenceParse(body []byte, companyID string) (*event.Event, error) {
	var env refEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, invalid("field %s has the wrong type", te.Field)
		}
		if errors.As(err, &te) {
			return nil, invalid("body is not a JSON object")
		}
		return nil, invalid("body is not valid JSON: %v", err)
	}
	m := env.Meta
	if m == nil {
		return nil, invalid("no meta object: not a Pipedrive webhook")
	}
	ev := &event.Event{Body: body}
	var err error
	switch {
	case strings.HasPrefix(string(m.Version), "2"):
		err = refParseV2(ev, m)
	case env.V == "1" || m.MetaV == "1" || env.Event != "":
		err = refParseV1(ev, &env)
	default:
		return nil, invalid("unknown payload shape: neither meta.version 2.0 nor a v1 event")
	}
	if err != nil {
		return nil, err
	}
	if !subjectToken(ev.Action) {
		return nil, invalid("action %q is not a safe subject token", ev.Action)
	}
	if !subjectToken(ev.Object) {
		return nil, invalid("object %q is not a safe subject token [a-z0-9_-]", ev.Object)
	}
	ev.CompanyID = string(m.CompanyID)
	if ev.CompanyID == "" {
		return nil, invalid("meta.company_id is missing")
	}
	if ev.CompanyID != companyID {
		return nil, &CompanyMismatchError{Path: companyID, Body: ev.CompanyID}
	}
	ev.WebhookID = string(m.WebhookID)
	ev.Host = m.Host
	if !hostName(ev.Host) {
		ev.Host = "" // falls back to pipedrive://company/<id> as ce-source
	}
	switch {
	case !headerSafe(ev.WebhookID):
		return nil, invalid("meta.webhook_id is not printable ASCII of at most 200 bytes")
	case !headerSafe(ev.EntityID):
		return nil, invalid("the entity id is not printable ASCII of at most 200 bytes")
	case !headerSafe(ev.ID):
		return nil, invalid("meta.id is not printable ASCII of at most 200 bytes")
	}
	return ev, nil
}

func refParseV2(ev *event.Event, m *refMeta) error {
	ev.Version = "2.0"
	switch m.Action {
	case "create", "change", "delete":
		ev.Action = m.Action
	default:
		return invalid("meta.action %q is not create, change or delete", m.Action)
	}
	ev.Object = m.Entity
	ev.EntityID = string(m.EntityID)
	ev.Attempt = 1
	if m.Attempt != "" {
		n, err := strconv.Atoi(string(m.Attempt))
		if err != nil || n < 1 || n > maxAttempt {
			return invalid("meta.attempt %q is not an attempt number", m.Attempt)
		}
		ev.Attempt = n
	}
	t, err := refParseTimestamp(string(m.Timestamp))
	if err != nil {
		return err
	}
	ev.Time = t
	// meta.id identifies the event, except for the user entity where it is
	// the user's id: there, and when it is missing, derive a stable id.
	if m.ID != "" && m.Entity != "user" {
		ev.ID = string(m.ID)
		return nil
	}
	if t.IsZero() {
		return invalid("meta.timestamp is missing: no event id can be derived")
	}
	stamp := t.Format(time.RFC3339Nano)
	if m.Entity == "user" {
		stamp = strconv.FormatInt(t.Unix(), 10)
	}
	ev.ID = derivedID(string(m.CompanyID), ev.Version, ev.Action, ev.Object, ev.EntityID, stamp)
	return nil
}

func refParseV1(ev *event.Event, env *refEnvelope) error {
	m := env.Meta
	ev.Version = "1.0"
	action, object := m.Action, m.Object
	if evAction, evObject, ok := strings.Cut(env.Event, "."); ok {
		if action == "" {
			action = evAction
		}
		if object == "" {
			object = evObject
		}
	}
	norm, ok := v1Actions[action]
	if !ok {
		return invalid("v1 action %q is not added, updated, deleted or merged", action)
	}
	ev.Action = norm
	ev.Object = strings.ToLower(object)
	ev.EntityID = string(m.ID)
	ev.Attempt = 1
	if env.Retry != nil {
		if *env.Retry < 0 || *env.Retry > maxAttempt {
			return invalid("retry %d is out of range", *env.Retry)
		}
		ev.Attempt = *env.Retry + 1
	}
	stamp := string(m.TimestampMicro)
	if stamp != "" {
		us, err := strconv.ParseInt(stamp, 10, 64)
		if err != nil {
			return invalid("meta.timestamp_micro %q is not an integer", stamp)
		}
		ev.Time = time.UnixMicro(us).UTC()
	} else {
		t, err := refParseTimestamp(string(m.Timestamp))
		if err != nil {
			return err
		}
		if t.IsZero() {
			return invalid("meta.timestamp is missing: no event id can be derived")
		}
		ev.Time = t
		stamp = strconv.FormatInt(t.Unix(), 10)
	}
	ev.ID = derivedID(string(m.CompanyID), ev.Version, ev.Action, ev.Object, ev.EntityID, stamp)
	return nil
}

// parseTimestamp reads an RFC 3339 string or Unix seconds; empty is zero.
func refParseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, invalid("meta.timestamp %q is not a Unix time", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("meta.timestamp %q is not RFC 3339 or Unix seconds", s)
	}
	return t.UTC(), nil
}
