package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/relay"
)

// PayloadError is a webhook body the gateway cannot relay; it becomes a 400.
type PayloadError struct{ Msg string }

func (e *PayloadError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &PayloadError{Msg: fmt.Sprintf(format, args...)}
}

// envelope holds the few top-level fields needed to tell v1 from v2. The
// rest of the body (data, previous, current) is skipped, not decoded: it is
// published as it came.
type envelope struct {
	V     flexString `json:"v"`
	Event string     `json:"event"`
	Retry *int       `json:"retry"`
	Meta  *meta      `json:"meta"`
}

type meta struct {
	// v2
	Action    string     `json:"action"`
	Entity    string     `json:"entity"`
	EntityID  flexString `json:"entity_id"`
	Version   flexString `json:"version"`
	Attempt   flexString `json:"attempt"`
	Timestamp flexString `json:"timestamp"`
	// v1 (id is the object's id there, an event id in v2)
	Object         string     `json:"object"`
	MetaV          flexString `json:"v"`
	TimestampMicro flexString `json:"timestamp_micro"`
	// both
	ID        flexString `json:"id"`
	CompanyID flexString `json:"company_id"`
	WebhookID flexString `json:"webhook_id"`
	Host      string     `json:"host"`
}

// flexString accepts a JSON string or number (Pipedrive sends ids as either,
// depending on version and entity) and keeps its text. null is empty.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*f = flexString(b)
	default:
		return errors.New("want a string or a number")
	}
	return nil
}

// maxAttempt bounds the attempt number; Pipedrive makes at most four.
const maxAttempt = 100

var v1Actions = map[string]string{"added": "create", "updated": "change", "deleted": "delete", "merged": "change"}

// Parse reads a webhook body (v2 or v1) delivered for companyID and returns
// the event to publish, or a *PayloadError. Body is referenced, not copied.
func Parse(body []byte, companyID string) (*relay.Event, error) {
	var env envelope
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
	ev := &relay.Event{Body: body}
	var err error
	switch {
	case strings.HasPrefix(string(m.Version), "2"):
		err = parseV2(ev, m)
	case env.V == "1" || m.MetaV == "1" || env.Event != "":
		err = parseV1(ev, &env)
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

// CompanyMismatchError is a body whose meta.company_id is not the company
// of the URL: a misrouted or forged delivery.
type CompanyMismatchError struct{ Path, Body string }

func (e *CompanyMismatchError) Error() string {
	return fmt.Sprintf("meta.company_id %q does not match the company %q in the URL", e.Body, e.Path)
}

func parseV2(ev *relay.Event, m *meta) error {
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
	t, err := parseTimestamp(string(m.Timestamp))
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

func parseV1(ev *relay.Event, env *envelope) error {
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
		t, err := parseTimestamp(string(m.Timestamp))
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
func parseTimestamp(s string) (time.Time, error) {
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

// derivedID is a stable id for events without a usable meta.id: a retry of
// the event hashes to the same value, another event of the same entity does
// not (unless it has the same action and timestamp).
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return "pd-" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func subjectToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// headerSafe keeps payload values that become NATS headers from breaking
// the header block: visible ASCII only, bounded length.
func headerSafe(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
