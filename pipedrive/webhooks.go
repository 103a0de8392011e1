package pipedrive

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// apiCall is one authenticated API call.
type apiCall struct {
	route  string
	method string
	path   string // below /api/v1, or below /api/v2 when v2 is set
	v2     bool
	query  url.Values
	domain string
	cred   Credentials
	body   any // JSON-encoded when set
	ok     []int
	// maxBody overrides the response size limit (list pages are larger).
	maxBody int
	// secrets besides the credentials that must never reach a message.
	secrets []string
}

// call sends k and decodes a successful body into out (when non-nil).
func (c *Client) call(ctx context.Context, k apiCall, out any) error {
	resp, err := c.send(ctx, k)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return decodeBody(k.route, resp, out)
}

// send performs k and returns a response whose status is one of k.ok.
func (c *Client) send(ctx context.Context, k apiCall) (*response, error) {
	if !k.cred.valid() {
		return nil, &APIError{Route: k.route, Kind: ErrUnauthorized, Message: "credentials must set exactly one of api token and access token"}
	}
	base, err := c.apiBase(k.route, k.domain)
	if err != nil {
		return nil, err
	}
	prefix := "/api/v1"
	if k.v2 {
		prefix = "/api/v2"
	}
	r := request{
		route:   k.route,
		method:  k.method,
		url:     base + prefix + k.path,
		cred:    &k.cred,
		maxBody: k.maxBody,
		secrets: append(k.cred.secrets(), k.secrets...),
	}
	if len(k.query) > 0 {
		r.url += "?" + k.query.Encode()
	}
	if k.body != nil {
		b, err := json.Marshal(k.body)
		if err != nil {
			return nil, &APIError{Route: k.route, Kind: ErrValidation, Message: "cannot encode request"}
		}
		r.body = b
		r.contentType = "application/json"
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(k.ok, resp.status) {
		return nil, statusError(r, resp, c.now())
	}
	return resp, nil
}

// decodeBody reads a successful response into out.
func decodeBody(route string, resp *response, out any) error {
	if err := json.Unmarshal(resp.body, out); err != nil {
		// A 2xx we cannot read: the call may have taken effect, so this is
		// a transport problem, never "nothing happened".
		return &APIError{Route: route, Status: resp.status, Kind: ErrTransport, Message: "undecodable response body", RateLimit: resp.rl, Err: err}
	}
	return nil
}

// Me returns the user the credentials belong to, with the company's id and
// domain (GET /v1/users/me, 2 tokens). domain may be empty.
func (c *Client) Me(ctx context.Context, domain string, cred Credentials) (User, error) {
	var env struct {
		Data *User `json:"data"`
	}
	err := c.call(ctx, apiCall{
		route: RouteMe, method: http.MethodGet, path: "/users/me",
		domain: domain, cred: cred, ok: []int{http.StatusOK},
	}, &env)
	if err != nil {
		return User{}, err
	}
	if env.Data == nil || env.Data.CompanyID == 0 {
		return User{}, &APIError{Route: RouteMe, Status: http.StatusOK, Kind: ErrTransport, Message: "response without user data"}
	}
	return *env.Data, nil
}

// ListWebhooks returns the company's webhooks (GET /v1/webhooks, 10 tokens).
// The answer holds webhook passwords in clear; never log it whole.
func (c *Client) ListWebhooks(ctx context.Context, domain string, cred Credentials) ([]Webhook, error) {
	var env struct {
		Data []Webhook `json:"data"`
	}
	err := c.call(ctx, apiCall{
		route: RouteListWebhooks, method: http.MethodGet, path: "/webhooks",
		domain: domain, cred: cred, ok: []int{http.StatusOK},
	}, &env)
	if err != nil {
		return nil, err
	}
	if env.Data == nil {
		// "data": null means none; callers compare lengths, not nil-ness.
		return []Webhook{}, nil
	}
	return env.Data, nil
}

// CreateWebhook registers a webhook (POST /v1/webhooks, 10 tokens). Every
// field is sent explicitly, version included, because Pipedrive changed the
// default version once and may again.
func (c *Client) CreateWebhook(ctx context.Context, domain string, cred Credentials, req CreateWebhookRequest) (Webhook, error) {
	version := req.Version
	if version == "" {
		version = "2.0"
	}
	body := struct {
		SubscriptionURL  string  `json:"subscription_url"`
		EventAction      string  `json:"event_action"`
		EventObject      string  `json:"event_object"`
		Name             string  `json:"name"`
		Version          string  `json:"version"`
		HTTPAuthUser     *string `json:"http_auth_user"`
		HTTPAuthPassword *string `json:"http_auth_password"`
		UserID           int64   `json:"user_id,omitempty"`
	}{
		SubscriptionURL:  req.SubscriptionURL,
		EventAction:      req.EventAction,
		EventObject:      req.EventObject,
		Name:             req.Name,
		Version:          version,
		HTTPAuthUser:     nullable(req.HTTPAuthUser),
		HTTPAuthPassword: nullable(req.HTTPAuthPassword),
		UserID:           req.UserID,
	}
	var env struct {
		Data *Webhook `json:"data"`
	}
	err := c.call(ctx, apiCall{
		route: RouteCreateWebhook, method: http.MethodPost, path: "/webhooks",
		domain: domain, cred: cred, body: body,
		ok:      []int{http.StatusCreated, http.StatusOK},
		secrets: []string{req.HTTPAuthPassword},
	}, &env)
	if err != nil {
		return Webhook{}, err
	}
	if env.Data == nil || env.Data.ID == 0 {
		// Something was accepted but we do not know what: the caller must
		// list again before creating another.
		return Webhook{}, &APIError{Route: RouteCreateWebhook, Kind: ErrTransport, Message: "response without webhook data"}
	}
	return *env.Data, nil
}

// DeleteWebhook removes a webhook (DELETE /v1/webhooks/{id}, 6 tokens). A
// webhook that is already gone yields an error matching ErrNotFound, which
// callers treat as success.
func (c *Client) DeleteWebhook(ctx context.Context, domain string, cred Credentials, id int64) error {
	if id <= 0 {
		return &APIError{Route: RouteDeleteWebhook, Kind: ErrValidation, Message: "invalid webhook id"}
	}
	return c.call(ctx, apiCall{
		route: RouteDeleteWebhook, method: http.MethodDelete, path: "/webhooks/" + strconv.FormatInt(id, 10),
		domain: domain, cred: cred, ok: []int{http.StatusOK, http.StatusNoContent},
	}, nil)
}
