package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// PayloadError is a webhook body the gateway cannot relay; it becomes a 400.
type PayloadError struct {
	Msg string
	// Ambiguous marks a body that readers can take two ways (SPEC §3:
	// 400 ambiguous_payload).
	Ambiguous bool
}

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

// object is the subject token of an entity or object name: lower-cased
// (SPEC §4: activityType is activitytype), interned when it is a usual one.
func object(b []byte) string {
	if s, ok := knownObjects[string(b)]; ok {
		return s
	}
	s := strings.ToLower(string(b))
	if known, ok := knownObjects[s]; ok {
		return known
	}
	return s
}

// Parse reads a webhook body (v2 or v1) delivered for companyID and returns
// the event to publish, or a *PayloadError. Body is referenced, not copied.
func Parse(body []byte, companyID string) (*event.Event, error) {
	ev := &event.Event{}
	if _, err := parseInto(ev, body, companyID); err != nil {
		return nil, err
	}
	return ev, nil
}

// parseInto is Parse filling a caller's (pooled) event. It also returns
// the delivery attempt as far as it could read it (0 when it could not),
// for the outcome of a body it refuses.
func parseInto(ev *event.Event, body []byte, companyID string) (attempt int, err error) {
	var s scanned
	if err := scanBody(body, &s); err != nil {
		if err == errNotObject {
			return 0, invalid("body is not a JSON object")
		}
		return 0, invalid("body is not valid JSON")
	}
	m := &s.m
	v2 := hasPrefix(m[mVersion], '2')
	attempt = readAttempt(&s, v2)
	if s.ambiguous != "" {
		return attempt, &PayloadError{Ambiguous: true,
			Msg: fmt.Sprintf("the key %q is given twice, or also with other letter case or escapes: readers of the body would disagree", s.ambiguous)}
	}
	if s.top[tMeta].kind != kindObject {
		return attempt, invalid("no meta object: not a Pipedrive webhook")
	}
	if err := checkTypes(&s); err != nil {
		return attempt, err
	}
	*ev = event.Event{Body: body, Attempt: attempt}
	switch {
	case v2:
		err = parseV2(ev, m)
	case isOne(s.top[tV]) || isOne(m[mV]) || s.top[tEvent].kind == kindString:
		err = parseV1(ev, &s)
	default:
		return attempt, invalid("unknown payload shape: neither meta.version 2.0 nor a v1 event")
	}
	if err != nil {
		return attempt, err
	}
	if attempt == 0 {
		return 0, invalid("meta.attempt or retry is not an attempt number")
	}
	if !subjectToken(ev.Action) {
		return attempt, invalid("action %q is not a safe subject token", ev.Action)
	}
	if !subjectToken(ev.Object) {
		return attempt, invalid("object %q is not a safe subject token [a-z0-9_-]", ev.Object)
	}
	company := m[mCompanyID].bytes()
	if len(company) == 0 {
		return attempt, invalid("meta.company_id is missing")
	}
	if string(company) != companyID {
		return attempt, &CompanyMismatchError{Path: companyID, Body: string(company)}
	}
	ev.CompanyID = companyID
	return ev.Attempt, finishStrings(ev, m)
}

// readAttempt is the delivery attempt, 1 for the first: v2 meta.attempt
// (1–4), v1 retry + 1; 0 when it cannot be read.
func readAttempt(s *scanned, v2 bool) int {
	if v2 {
		if !s.m[mAttempt].present() {
			return 1
		}
		n, ok := atoi(s.m[mAttempt].bytes())
		if !ok || n < 1 || n > maxAttempt {
			return 0
		}
		return n
	}
	if !s.top[tRetry].present() {
		return 1
	}
	n, ok := atoi(s.top[tRetry].bytes())
	if !ok || n > maxAttempt {
		return 0
	}
	return n + 1
}

// checkTypes rejects meta fields of the wrong JSON type: names must be
// strings, ids strings or numbers. Timestamps are never a reason to refuse.
func checkTypes(s *scanned) error {
	for i, v := range s.m {
		switch i {
		case mTimestamp, mTimestampMicro, mTimestampMilli:
		case mAction, mEntity, mObject, mHost:
			if v.kind != absent && v.kind != kindString && v.kind != kindNull {
				return invalid("field meta.%s has the wrong type", metaKeys[i])
			}
		default:
			if v.kind != absent && v.kind != kindString && v.kind != kindNumber && v.kind != kindNull {
				return invalid("field meta.%s has the wrong type", metaKeys[i])
			}
		}
	}
	if k := s.top[tEvent].kind; k != absent && k != kindString && k != kindNull {
		return invalid("field event has the wrong type")
	}
	if k := s.top[tRetry].kind; k != absent && k != kindNumber && k != kindNull {
		return invalid("field retry has the wrong type")
	}
	if k := s.top[tV].kind; k != absent && k != kindString && k != kindNumber && k != kindNull {
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
	ev.Object = object(m[mEntity].bytes())
	ev.Time, _ = readTime(m[mTimestamp], secondsOrMillis)
	// meta.id identifies the event, except for the user entity where it is
	// the user's id: there, and when it is missing, derive a stable id.
	if len(m[mID].bytes()) > 0 && ev.Object != "user" {
		return nil // ID is set from meta.id by finishStrings
	}
	ev.ID = derivedID(string(m[mCompanyID].bytes()), ev.Version, ev.Action, ev.Object, string(m[mEntityID].bytes()),
		stamp(m[mTimestamp], secondsOrMillis))
	return nil
}

func parseV1(ev *event.Event, s *scanned) error {
	m := &s.m
	ev.Version = "1.0"
	action, obj := m[mAction].bytes(), m[mObject].bytes()
	if evAction, evObject, ok := strings.Cut(string(s.top[tEvent].bytes()), "."); ok {
		if len(action) == 0 {
			action = []byte(evAction)
		}
		if len(obj) == 0 {
			obj = []byte(evObject)
		}
	}
	norm, ok := v1Actions[string(action)]
	if !ok {
		return invalid("v1 action %q is not added, updated, deleted or merged", action)
	}
	ev.Action = norm
	ev.Object = object(obj)
	// The most precise time Pipedrive sent identifies the event; older
	// hooks have only timestamp_milli, or only timestamp (seconds).
	src, u := m[mTimestamp], secondsOrMillis
	switch {
	case m[mTimestampMicro].present():
		src, u = m[mTimestampMicro], micros
	case m[mTimestampMilli].present():
		src, u = m[mTimestampMilli], millis
	}
	var readable bool
	if ev.Time, readable = readTime(src, u); !readable {
		ev.Time = firstTime(m)
	}
	// v1 has no event id; meta.id is the object's id.
	ev.ID = derivedID(string(m[mCompanyID].bytes()), ev.Version, ev.Action, ev.Object, string(m[mID].bytes()), stamp(src, u))
	return nil
}

// firstTime is the first v1 time that can be read, most precise first.
func firstTime(m *[nMeta]rawValue) (t time.Time) {
	for _, f := range []struct {
		v rawValue
		u unit
	}{{m[mTimestampMicro], micros}, {m[mTimestampMilli], millis}, {m[mTimestamp], secondsOrMillis}} {
		if t, ok := readTime(f.v, f.u); ok {
			return t
		}
	}
	return t
}

// finishStrings checks the values that become NATS headers and makes them
// strings.
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
	if id != nil {
		ev.ID = string(id)
	}
	ev.EntityID, ev.WebhookID = string(entity), string(webhook)
	if pipedriveHost(host) {
		ev.Host = string(host)
	}
	return nil
}

// bytes returns a string or number value's text, unescaped; nil for null,
// absent and other kinds.
func (v rawValue) bytes() []byte {
	switch v.kind {
	case kindString:
		if v.esc {
			return unescape(v.b)
		}
		return v.b
	case kindNumber:
		return v.b
	}
	return nil
}

// text is the value's text of any kind: a string's contents, unescaped, or
// the JSON text of anything else.
func (v rawValue) text() []byte {
	if v.kind == kindString {
		return v.bytes()
	}
	return v.b
}

func hasPrefix(v rawValue, c byte) bool {
	b := v.bytes()
	return len(b) > 0 && b[0] == c
}

func isOne(v rawValue) bool { return string(v.bytes()) == "1" }

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
