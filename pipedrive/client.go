package pipedrive

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Route templates name API calls in OnResponse, errors and metrics. They never
// contain ids, so their cardinality stays fixed.
const (
	RouteMe            = "GET /v1/users/me"
	RouteListWebhooks  = "GET /v1/webhooks"
	RouteCreateWebhook = "POST /v1/webhooks"
	RouteDeleteWebhook = "DELETE /v1/webhooks/{id}"
	RouteToken         = "POST /oauth/token"
)

const (
	// DefaultTimeout bounds each request when Options.Timeout is zero.
	DefaultTimeout = 15 * time.Second
	// DefaultOAuthURL is Pipedrive's OAuth server.
	DefaultOAuthURL = "https://oauth.pipedrive.com"

	// defaultAPIURL works for every company; the company's own domain is
	// preferred because it routes to the right data centre directly.
	defaultAPIURL = "https://api.pipedrive.com"
	// maxBodyBytes caps what we read: 40 webhooks are a few kilobytes, so
	// anything near this is not a Pipedrive answer.
	maxBodyBytes = 4 << 20
	userAgent    = "pipedrive-gateway"
)

// Options configure a Client. The zero value talks to the real Pipedrive.
type Options struct {
	// HTTPClient sends the requests; default: one with a 15 s timeout. It is
	// copied, and the copy never follows redirects.
	HTTPClient *http.Client
	// APIURL overrides the API host (scheme and host only, e.g. an httptest
	// URL). Empty means https://<domain>.pipedrive.com.
	APIURL string
	// OAuthURL overrides the OAuth host; default DefaultOAuthURL.
	OAuthURL string
	// ClientID and ClientSecret identify the OAuth app.
	ClientID     string
	ClientSecret string
	// Timeout bounds each request, including reading the body; default 15 s.
	Timeout time.Duration
	// OnResponse, when set, is called after every response (status 0 for a
	// transport error) with the route template, e.g. RouteListWebhooks.
	// ctx is the caller's, so that the hook can tell which company it was.
	OnResponse func(ctx context.Context, route string, status int, rl RateLimit)
	// Tracer, when set, makes a client span per call (route template,
	// status; never a token).
	Tracer trace.TracerProvider
	// Now is the clock used for token expiry and Retry-After dates; default
	// time.Now.
	Now func() time.Time
}

// Client calls the Pipedrive API. It is safe for concurrent use.
type Client struct {
	http         *http.Client
	apiURL       string
	oauthURL     string
	clientID     string
	clientSecret string
	timeout      time.Duration
	onResponse   func(context.Context, string, int, RateLimit)
	now          func() time.Time
	tracer       trace.Tracer
}

// New returns a Client configured by opts.
func New(opts Options) *Client {
	hc := http.Client{Timeout: DefaultTimeout}
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	// Pipedrive's API does not redirect. Following one would forward the
	// x-api-token header (net/http only strips Authorization and cookies) to
	// wherever the redirect points.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{
		http:         &hc,
		apiURL:       strings.TrimRight(opts.APIURL, "/"),
		oauthURL:     strings.TrimRight(opts.OAuthURL, "/"),
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		timeout:      opts.Timeout,
		onResponse:   opts.OnResponse,
		now:          opts.Now,
	}
	if c.oauthURL == "" {
		c.oauthURL = DefaultOAuthURL
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.Tracer == nil {
		opts.Tracer = tracenoop.NewTracerProvider()
	}
	c.tracer = opts.Tracer.Tracer("github.com/pipedrive-gateway/pipedrive-gateway/pipedrive")
	return c
}

// request is one HTTP exchange as the client sees it.
type request struct {
	route       string
	method      string
	url         string
	cred        *Credentials // API calls
	basic       bool         // OAuth calls: client id and secret as Basic auth
	contentType string
	body        []byte
	maxBody     int // 0: maxBodyBytes
	// secrets are scrubbed from any message taken from the response, in case
	// Pipedrive ever echoes one back.
	secrets []string
}

type response struct {
	status int
	header http.Header
	body   []byte
	rl     RateLimit
}

// do sends r within the per-request timeout and reads the whole body, so the
// deadline also covers a server that stalls mid-body.
func (c *Client) do(ctx context.Context, r request) (_ *response, err error) {
	ctx, span := c.tracer.Start(ctx, r.route, trace.WithSpanKind(trace.SpanKindClient))
	status := 0
	defer func() {
		if span.IsRecording() {
			method, tmpl, _ := strings.Cut(r.route, " ")
			span.SetAttributes(attribute.String("http.request.method", method), attribute.String("http.route", tmpl))
			if status != 0 {
				span.SetAttributes(attribute.Int("http.response.status_code", status))
			}
			if err != nil {
				span.SetStatus(codes.Error, err.Error()) // APIError messages carry no secrets
			}
		}
		span.End()
	}()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		// The URL is built from our own settings; keep the detail out of the
		// message anyway, it may carry a domain typo the operator must fix.
		return nil, &APIError{Route: r.route, Kind: ErrTransport, Message: "invalid request URL"}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.cred != nil {
		r.cred.apply(req.Header)
	}
	if r.basic {
		req.SetBasicAuth(c.clientID, c.clientSecret)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		c.observe(ctx, r.route, 0, noRateLimit())
		return nil, transportError(r.route, 0, noRateLimit(), err)
	}
	defer resp.Body.Close()
	rl := parseRateLimit(resp.Header)
	status = resp.StatusCode
	c.observe(ctx, r.route, resp.StatusCode, rl)

	limit := cmp.Or(r.maxBody, maxBodyBytes)
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, transportError(r.route, resp.StatusCode, rl, err)
	}
	if len(b) > limit {
		return nil, &APIError{Route: r.route, Status: resp.StatusCode, Kind: ErrTransport, Message: "response body too large", RateLimit: rl}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b, rl: rl}, nil
}

func (c *Client) observe(ctx context.Context, route string, status int, rl RateLimit) {
	if c.onResponse != nil {
		c.onResponse(ctx, route, status, rl)
	}
}

// apiBase returns the scheme and host for a company's API calls.
func (c *Client) apiBase(route, domain string) (string, error) {
	if c.apiURL != "" {
		return c.apiURL, nil
	}
	if domain == "" {
		return defaultAPIURL, nil
	}
	d := strings.TrimSuffix(strings.ToLower(domain), ".pipedrive.com")
	// The domain becomes part of a host name that receives our token: accept
	// one DNS label only, so nothing can point the request elsewhere.
	if !validDomain(d) {
		return "", &APIError{Route: route, Kind: ErrValidation, Message: "invalid company domain"}
	}
	return "https://" + d + ".pipedrive.com", nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 63 || d[0] == '-' {
		return false
	}
	for _, r := range d {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// RateLimit is what Pipedrive reported about the caller's budgets. Counts
// that were absent from the response are -1, so "0 left" stays meaningful.
type RateLimit struct {
	// Limit and Remaining describe the rolling burst window
	// (x-ratelimit-limit, x-ratelimit-remaining).
	Limit     int
	Remaining int
	// Reset is the time until the burst window resets (x-ratelimit-reset,
	// in seconds on the wire); 0 when absent.
	Reset time.Duration
	// DailyLimit and DailyRemaining describe the company's daily token budget
	// (x-daily-ratelimit-token-limit, x-daily-ratelimit-token-remaining).
	DailyLimit     int
	DailyRemaining int
}

func noRateLimit() RateLimit {
	return RateLimit{Limit: -1, Remaining: -1, DailyLimit: -1, DailyRemaining: -1}
}

func parseRateLimit(h http.Header) RateLimit {
	rl := RateLimit{
		Limit:          headerInt(h, "x-ratelimit-limit"),
		Remaining:      headerInt(h, "x-ratelimit-remaining"),
		DailyLimit:     headerInt(h, "x-daily-ratelimit-token-limit"),
		DailyRemaining: headerInt(h, "x-daily-ratelimit-token-remaining"),
	}
	if s := strings.TrimSpace(h.Get("x-ratelimit-reset")); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e6 {
			rl.Reset = time.Duration(f * float64(time.Second))
		}
	}
	return rl
}

func headerInt(h http.Header, key string) int {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get(key)))
	if err != nil {
		return -1
	}
	return n
}

// transportError wraps a network failure. The *url.Error is unwrapped because
// its message repeats the full URL; the cause still matches errors.Is
// (context.DeadlineExceeded, io.EOF, ...).
func transportError(route string, status int, rl RateLimit, err error) *APIError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := "request failed"
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		msg = "request timed out"
	}
	return &APIError{Route: route, Status: status, Kind: ErrTransport, Message: msg, RateLimit: rl, Err: err}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
