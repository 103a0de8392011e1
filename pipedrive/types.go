package pipedrive

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Credentials authenticate API calls for one company. Exactly one field is
// set. They are sent in headers only and never printed.
type Credentials struct {
	// APIToken is a user's personal API token (x-api-token header).
	APIToken string
	// AccessToken is an OAuth access token (Authorization: Bearer).
	AccessToken string
}

func (c Credentials) valid() bool {
	return (c.APIToken == "") != (c.AccessToken == "")
}

func (c Credentials) apply(h http.Header) {
	if c.APIToken != "" {
		h.Set("x-api-token", c.APIToken)
		return
	}
	h.Set("Authorization", "Bearer "+c.AccessToken)
}

func (c Credentials) secrets() []string { return []string{c.APIToken, c.AccessToken} }

func (c Credentials) kind() string {
	switch {
	case c.APIToken != "":
		return "api_token"
	case c.AccessToken != "":
		return "oauth"
	}
	return "none"
}

// String names the kind of credentials, never the token.
func (c Credentials) String() string { return "pipedrive.Credentials{" + c.kind() + "}" }

// GoString keeps %#v from printing the token.
func (c Credentials) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the token.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.kind()) }

// User is the caller as returned by GET /v1/users/me; the company id and
// domain identify the connected company.
type User struct {
	ID            int64
	CompanyID     int64
	CompanyDomain string
	CompanyName   string
	Name          string
	Email         string
}

// UnmarshalJSON tolerates ids sent as numbers or numeric strings.
func (u *User) UnmarshalJSON(b []byte) error {
	var w struct {
		ID            flexInt    `json:"id"`
		CompanyID     flexInt    `json:"company_id"`
		CompanyDomain flexString `json:"company_domain"`
		CompanyName   flexString `json:"company_name"`
		Name          flexString `json:"name"`
		Email         flexString `json:"email"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*u = User{
		ID:            w.ID.v,
		CompanyID:     w.CompanyID.v,
		CompanyDomain: string(w.CompanyDomain),
		CompanyName:   string(w.CompanyName),
		Name:          string(w.Name),
		Email:         string(w.Email),
	}
	return nil
}

// Webhook is a webhook object from /v1/webhooks. Nullable fields are nil or
// empty when Pipedrive sent null.
//
// HTTPAuthPassword is returned by Pipedrive in clear: String, GoString and
// LogValue leave it out, but MarshalJSON writes the Pipedrive wire format
// including it, so never marshal a Webhook into logs or API answers.
type Webhook struct {
	ID               int64
	CompanyID        int64
	OwnerID          int64
	UserID           int64 // whose permissions filter the events
	EventAction      string
	EventObject      string
	SubscriptionURL  string
	Version          string // "1.0" or "2.0"
	IsActive         int    // 0 or 1
	AddTime          time.Time
	RemoveTime       *time.Time
	Type             string // general, application or automation
	HTTPAuthUser     string
	HTTPAuthPassword string
	RemoveReason     string
	LastDeliveryTime *time.Time
	LastHTTPStatus   *int
	AdminID          int64
	Name             string
}

// Active reports whether the webhook delivers: is_active is 1 and it has no
// remove_time. Whether Pipedrive lists removed hooks is undocumented, so both
// are checked.
func (w Webhook) Active() bool { return w.IsActive == 1 && w.RemoveTime == nil }

// String describes the webhook without its password.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %d (%s.%s v%s active=%t url=%s user=%q name=%q type=%s)",
		w.ID, w.EventAction, w.EventObject, w.Version, w.Active(),
		safeURL(w.SubscriptionURL), w.HTTPAuthUser, w.Name, w.Type)
}

// GoString keeps %#v from printing the password.
func (w Webhook) GoString() string { return w.String() }

// LogValue implements slog.LogValuer without the password.
func (w Webhook) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Int64("id", w.ID),
		slog.Int64("company_id", w.CompanyID),
		slog.String("event_action", w.EventAction),
		slog.String("event_object", w.EventObject),
		slog.String("version", w.Version),
		slog.Bool("active", w.Active()),
		slog.String("subscription_url", safeURL(w.SubscriptionURL)),
		slog.String("http_auth_user", w.HTTPAuthUser),
		slog.Bool("has_password", w.HTTPAuthPassword != ""),
		slog.String("name", w.Name),
		slog.String("type", w.Type),
	}
	if w.LastHTTPStatus != nil {
		attrs = append(attrs, slog.Int("last_http_status", *w.LastHTTPStatus))
	}
	return slog.GroupValue(attrs...)
}

// safeURL drops user info and the query: other integrations' webhooks often
// carry secrets there, and we print URLs of webhooks we do not own.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// CreateWebhookRequest is the body of POST /v1/webhooks.
type CreateWebhookRequest struct {
	SubscriptionURL  string
	EventAction      string // create, change, delete or *
	EventObject      string // deal, person, … or *
	Name             string
	Version          string // sent as "2.0" when empty: Pipedrive's default changed once already
	HTTPAuthUser     string
	HTTPAuthPassword string `json:"-"` // the wire body is built in CreateWebhook
	UserID           int64  // optional; 0 lets Pipedrive use the caller
}

// String describes the request without its password.
func (r CreateWebhookRequest) String() string {
	return fmt.Sprintf("create webhook (%s.%s v%s url=%s user=%q name=%q)",
		r.EventAction, r.EventObject, r.Version, safeURL(r.SubscriptionURL), r.HTTPAuthUser, r.Name)
}

// GoString keeps %#v from printing the password.
func (r CreateWebhookRequest) GoString() string { return r.String() }

// LogValue implements slog.LogValuer without the password.
func (r CreateWebhookRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Token is an OAuth token set from /oauth/token.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string // comma-separated
	// ExpiresAt is when the access token stops working (now + expires_in).
	ExpiresAt time.Time
	// APIDomain is the company's API base, e.g. https://acme-sales.pipedrive.com.
	APIDomain string
}

// String describes the token without its secrets.
func (t Token) String() string {
	return fmt.Sprintf("pipedrive.Token{scope=%q expires_at=%s api_domain=%s}",
		t.Scope, t.ExpiresAt.Format(time.RFC3339), t.APIDomain)
}

// GoString keeps %#v from printing the tokens.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer without the tokens.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("scope", t.Scope),
		slog.Time("expires_at", t.ExpiresAt),
		slog.String("api_domain", t.APIDomain),
	)
}
