package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// PayloadError is a webhook body the gateway cannot relay; it becomes a 400.
type PayloadError struct{ Msg string }

func (e *PayloadError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &PayloadError{Msg: fmt.Sprintf(format, args...)}
}

// CompanyMismatchError is a body whose meta.company_id is not the company
// of the URL: a misrouted or forged delivery.
type CompanyMismatchError struct{ Path, Body string }

func (e *CompanyMismatchError) Error() string {
	return fmt.Sprintf("meta.company_id %q does not match the company %q in the URL", e.Body, e.Path)
}

// maxAttempt bounds the attempt number; Pipedrive makes at most four.
const maxAttempt = 100

var v1Actions = map[string]string{"added": "create", "updated": "change", "deleted": "delete", "merged": "change"}

// knownObjects interns the usual object names so that the common events
// need no string allocation for them.
var knownObjects = func() map[string]string {
	m := map[string]string{}
	for _, o := range []string{"activity", "activitytype", "deal", "lead", "note", "organization", "person",
		"pipeline", "product", "stage", "user", "deal_product", "deal_installment", "project", "task", "board", "phase"} {
		m[o] = o
	}
	return m
}()

// Parse reads a webhook body (v2 or v1) delivered for companyID and returns
// the event to publish, or a *PayloadError. Body is referenced, not copied.
func Parse(body []byte, companyID string) (*event.Event, error) {
	ev := &event.Event{}
	if err := parseInto(ev, body, companyID); err != nil {
		return nil, err
	}
	return ev, nil
}

// parseInto is Parse filling a caller's (pooled) event.
func parseInto(ev *event.Event, body []byte, companyID string) error {
	var s scanned
	if err := scanBody(body, &s); err != nil {
		if err == errNotObject {
			return invalid("body is not a JSON object")
		}
		return invalid("body is not valid JSON")
	}
	if s.meta.kind != '{' {
		return invalid("no meta object: not a Pipedrive webhook")
	}
	if err := checkTypes(&s); err != nil {
		return err
	}
	*ev = event.Event{Body: body}
	m := &s.m
	var err error
	switch {
	case hasPrefix(m[mVersion], '2'):
		err = parseV2(ev, m)
	case isOne(s.topV) || isOne(m[mV]) || s.event.kind == '"':
		err = parseV1(ev, &s)
	default:
		return invalid("unknown payload shape: neither meta.version 2.0 nor a v1 event")
	}
	if err != nil {
		return err
	}
	if !subjectToken(ev.Action) {
		return invalid("action %q is not a safe subject token", ev.Action)
	}
	if !subjectToken(ev.Object) {
		return invalid("object %q is not a safe subject token [a-z0-9_-]", ev.Object)
	}
	company := m[mCompanyID].bytes()
	if len(company) == 0 {
		return invalid("meta.company_id is missing")
	}
	if string(company) != companyID {
		return &CompanyMismatchError{Path: companyID, Body: string(company)}
	}
	ev.CompanyID = companyID
	return finishStrings(ev, m)
}

// checkTypes rejects meta fields of the wrong JSON type: names must be
// strings, ids and times strings or numbers.
func checkTypes(s *scanned) error {
	for i, v := range s.m {
		switch i {
		case mAction, mEntity, mObject, mHost:
			if v.kind != 0 && v.kind != '"' && v.kind != 'n' {
				return invalid("field meta.%s has the wrong type", metaKeys[i])
			}
		default:
			if v.kind != 0 && v.kind != '"' && v.kind != '0' && v.kind != 'n' {
				return invalid("field meta.%s has the wrong type", metaKeys[i])
			}
		}
	}
	if k := s.event.kind; k != 0 && k != '"' && k != 'n' {
		return invalid("field event has the wrong type")
	}
	if k := s.retry.kind; k != 0 && k != '0' && k != 'n' {
		return invalid("field retry has the wrong type")
	}
	if k := s.topV.kind; k != 0 && k != '"' && k != '0' && k != 'n' {
		return invalid("field v has the wrong type")
	}
	return nil
}

func parseV2(ev *event.Event, m *[nMeta]rawValue) error {
	ev.Version = "2.0"
	switch action := m[mAction].bytes(); string(action) {
	case "create":
		ev.Action = "create"
	case "change":
		ev.Action = "change"
	case "delete":
		ev.Action = "delete"
	default:
		return invalid("meta.action %q is not create, change or delete", action)
	}
	ev.Object = internObject(m[mEntity].bytes())
	ev.Attempt = 1
	if a := m[mAttempt].bytes(); len(a) > 0 {
		n, ok := atoi(a)
		if !ok || n < 1 || n > maxAttempt {
			return invalid("meta.attempt %q is not an attempt number", a)
		}
		ev.Attempt = n
	}
	t, err := parseTimestamp(m[mTimestamp].bytes())
	if err != nil {
		return err
	}
	ev.Time = t
	// meta.id identifies the event, except for the user entity where it is
	// the user's id: there, and when it is missing, derive a stable id.
	if len(m[mID].bytes()) > 0 && ev.Object != "user" {
		return nil // ID is set from meta.id by finishStrings
	}
	if t.IsZero() {
		return invalid("meta.timestamp is missing: no event id can be derived")
	}
	stamp := t.Format(time.RFC3339Nano)
	if ev.Object == "user" {
		stamp = strconv.FormatInt(t.Unix(), 10)
	}
	ev.ID = derivedID(string(m[mCompanyID].bytes()), ev.Version, ev.Action, ev.Object, string(m[mEntityID].bytes()), stamp)
	return nil
}

func parseV1(ev *event.Event, s *scanned) error {
	m := &s.m
	ev.Version = "1.0"
	action, object := string(m[mAction].bytes()), string(m[mObject].bytes())
	if evAction, evObject, ok := cut(string(s.event.bytes()), '.'); ok {
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
	ev.Object = internObject([]byte(lower(object)))
	ev.Attempt = 1
	if r := s.retry.bytes(); len(r) > 0 {
		n, ok := atoi(r)
		if !ok || n < 0 || n > maxAttempt {
			return invalid("retry %s is out of range", r)
		}
		ev.Attempt = n + 1
	}
	stamp := string(m[mTimestampMicro].bytes())
	if stamp != "" {
		us, err := strconv.ParseInt(stamp, 10, 64)
		if err != nil {
			return invalid("meta.timestamp_micro %q is not an integer", stamp)
		}
		ev.Time = time.UnixMicro(us).UTC()
	} else {
		t, err := parseTimestamp(m[mTimestamp].bytes())
		if err != nil {
			return err
		}
		if t.IsZero() {
			return invalid("meta.timestamp is missing: no event id can be derived")
		}
		ev.Time = t
		stamp = strconv.FormatInt(t.Unix(), 10)
	}
	// v1 has no event id; meta.id is the object's id.
	ev.ID = derivedID(string(m[mCompanyID].bytes()), ev.Version, ev.Action, ev.Object, string(m[mID].bytes()), stamp)
	return nil
}

// finishStrings checks the values that become NATS headers and makes them
// strings with one allocation for all of them.
func finishStrings(ev *event.Event, m *[nMeta]rawValue) error {
	entity := m[mEntityID].bytes()
	if ev.Version == "1.0" {
		entity = m[mID].bytes()
	}
	var id []byte
	if ev.ID == "" {
		id = m[mID].bytes()
	}
	webhook, host := m[mWebhookID].bytes(), m[mHost].bytes()
	switch {
	case !headerSafe(webhook):
		return invalid("meta.webhook_id is not printable ASCII of at most 200 bytes")
	case !headerSafe(entity):
		return invalid("the entity id is not printable ASCII of at most 200 bytes")
	case !headerSafe(id) || !headerSafe(ev.ID):
		return invalid("meta.id is not printable ASCII of at most 200 bytes")
	}
	if !hostName(host) {
		host = nil // falls back to pipedrive://company/<id> as ce-source
	}
	var buf [1024]byte
	all := append(append(append(append(buf[:0], id...), entity...), webhook...), host...)
	str := string(all)
	n := 0
	take := func(b []byte) string { s := str[n : n+len(b)]; n += len(b); return s }
	if id != nil {
		ev.ID = take(id)
	}
	ev.EntityID, ev.WebhookID, ev.Host = take(entity), take(webhook), take(host)
	return nil
}

// bytes returns a string or number value's text, unescaped; nil for null,
// absent and other kinds (checkTypes has rejected those).
func (v rawValue) bytes() []byte {
	switch v.kind {
	case '"':
		if v.esc {
			return unescape(v.b)
		}
		return v.b
	case '0':
		return v.b
	}
	return nil
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
