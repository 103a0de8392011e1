package pipedrive

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sentinels for errors.Is. Every error the client returns is an *APIError
// whose Kind is one of these.
var (
	// ErrRateLimited is a 429: the burst window or the daily budget is used up.
	ErrRateLimited = errors.New("pipedrive: rate limited")
	// ErrUnauthorized is a 401, or an OAuth invalid_grant: the credentials
	// are wrong, revoked or expired and retrying will not help.
	ErrUnauthorized = errors.New("pipedrive: unauthorized")
	// ErrForbidden is a 403: a missing scope, a webhook we may not touch, or an
	// abuse block (then APIError.Blocked is set).
	ErrForbidden = errors.New("pipedrive: forbidden")
	// ErrNotFound is a 404. On delete it means the webhook is already gone.
	ErrNotFound = errors.New("pipedrive: not found")
	// ErrValidation is a 400: Pipedrive rejected the request's fields.
	ErrValidation = errors.New("pipedrive: validation failed")
	// ErrLimitReached is a 422: the user already has 40 webhooks.
	ErrLimitReached = errors.New("pipedrive: webhook limit reached")
	// ErrServer is a 5xx.
	ErrServer = errors.New("pipedrive: server error")
	// ErrTransport is a network failure, a timeout, or a 2xx whose body could
	// not be decoded: the request may or may not have taken effect.
	ErrTransport = errors.New("pipedrive: transport error")
	// ErrUnexpectedStatus is any other status (e.g. 402 account not open).
	ErrUnexpectedStatus = errors.New("pipedrive: unexpected status")
)

// APIError describes one failed call. Its message never contains
// credentials, webhook passwords or response bodies.
type APIError struct {
	// Route is the route template, e.g. RouteCreateWebhook.
	Route string
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Kind is one of the Err* sentinels.
	Kind error
	// Message is Pipedrive's short error text, or ours.
	Message string
	// Fields holds per-field validation messages from a 400's "errors" object.
	Fields map[string][]string
	// RetryAfter is how long to wait before retrying: for a 429 from
	// Retry-After, else x-ratelimit-reset, else 2 s; for a 5xx only when
	// Retry-After was sent.
	RetryAfter time.Duration
	// RateLimit is what the response reported.
	RateLimit RateLimit
	// DailyBudgetExhausted is set on a 429 when the company's daily token
	// budget is 0: retrying before Pipedrive's midnight is pointless.
	DailyBudgetExhausted bool
	// Blocked is set on a 403 whose body is not JSON: Pipedrive's edge
	// blocks integrations that keep calling after 429s with an HTML page.
	Blocked bool
	// Err is the underlying cause of a transport error, if any.
	Err error
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("pipedrive")
	if e.Route != "" {
		b.WriteString(": " + e.Route)
	}
	if e.Status != 0 {
		b.WriteString(": status " + strconv.Itoa(e.Status))
	}
	if e.Kind != nil {
		b.WriteString(": " + strings.TrimPrefix(e.Kind.Error(), "pipedrive: "))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Blocked {
		b.WriteString(" (blocked)")
	}
	if e.DailyBudgetExhausted {
		b.WriteString(" (daily budget exhausted)")
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after " + e.RetryAfter.String() + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes Kind and the cause to errors.Is and errors.As.
func (e *APIError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Temporary reports whether retrying the same call later may succeed: rate
// limits, server errors and transport failures.
func Temporary(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrServer) || errors.Is(err, ErrTransport)
}

// RetryAfter returns how long Pipedrive asked us to wait, or 0.
func RetryAfter(err error) time.Duration {
	var e *APIError
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// errorBody covers Pipedrive's error envelopes: {"error": …}, {"message": …},
// {"errors": {"field": ["msg"]}} and OAuth's {"error": "invalid_grant", …}.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message json.RawMessage `json:"message"`
	Errors  json.RawMessage `json:"errors"`
}

// statusError maps a non-success response to an *APIError. The body is only
// trusted when it is a JSON object; an HTML page (a proxy or the abuse block)
// is never decoded.
func statusError(r request, resp *response, now time.Time) *APIError {
	e := &APIError{Route: r.route, Status: resp.status, RateLimit: resp.rl}
	var body errorBody
	isJSON := looksLikeJSONObject(resp.body) && json.Unmarshal(resp.body, &body) == nil
	code := ""
	if isJSON {
		code = rawString(body.Error)
		e.Message = joinMessage(code, rawString(body.Message))
		e.Fields = rawFields(body.Errors)
		if e.Message == "" && len(e.Fields) > 0 {
			e.Message = fieldsMessage(e.Fields)
		}
		e.Message = clean(e.Message, r.secrets)
		for k, msgs := range e.Fields {
			for i := range msgs {
				msgs[i] = clean(msgs[i], r.secrets)
			}
			e.Fields[k] = msgs
		}
	}

	ra, hasRA := parseRetryAfter(resp.header, now)
	switch s := resp.status; {
	case s == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		switch {
		case hasRA:
			e.RetryAfter = ra
		case resp.rl.Reset > 0:
			e.RetryAfter = resp.rl.Reset
		default:
			e.RetryAfter = 2 * time.Second
		}
		e.DailyBudgetExhausted = resp.rl.DailyRemaining == 0
	case s == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	case s == http.StatusForbidden:
		e.Kind = ErrForbidden
		e.Blocked = !isJSON
		if e.Blocked {
			e.Message = "non-JSON answer, likely an abuse block"
		}
	case s == http.StatusNotFound:
		e.Kind = ErrNotFound
	case s == http.StatusUnprocessableEntity:
		e.Kind = ErrLimitReached
	case s == http.StatusBadRequest && code == "invalid_grant":
		// An unusable code or refresh token: only a new authorization helps.
		e.Kind = ErrUnauthorized
	case s == http.StatusBadRequest:
		e.Kind = ErrValidation
	case s >= 500:
		e.Kind = ErrServer
		if hasRA {
			e.RetryAfter = ra
		}
	default:
		e.Kind = ErrUnexpectedStatus
	}
	return e
}

func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func looksLikeJSONObject(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "{")
}

// rawString reads a JSON string; anything else (objects, numbers) is ignored
// rather than echoed.
func rawString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// rawFields reads {"field": ["msg", …]} or {"field": "msg"}.
func rawFields(raw json.RawMessage) map[string][]string {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		var list []string
		if json.Unmarshal(v, &list) == nil {
			out[k] = list
			continue
		}
		if s := rawString(v); s != "" {
			out[k] = []string{s}
		}
	}
	return out
}

func joinMessage(code, msg string) string {
	switch {
	case code == "":
		return msg
	case msg == "" || msg == code:
		return code
	default:
		return code + ": " + msg
	}
}

func fieldsMessage(fields map[string][]string) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %s", k, strings.Join(fields[k], ", ")))
	}
	return strings.Join(parts, "; ")
}

// maxMessage keeps messages one log line long.
const maxMessage = 200

// clean removes any secret we sent, flattens control characters (no log
// injection) and truncates.
func clean(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxMessage {
		s = string(r[:maxMessage]) + "…"
	}
	return s
}
