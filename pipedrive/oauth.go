package pipedrive

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AuthorizeURL is where the installing user is sent to grant access. state
// is omitted when empty.
func (c *Client) AuthorizeURL(redirectURI, state string) string {
	q := url.Values{}
	q.Set("client_id", c.clientID)
	q.Set("redirect_uri", redirectURI)
	if state != "" {
		q.Set("state", state)
	}
	return c.oauthURL + "/oauth/authorize?" + q.Encode()
}

// ExchangeCode trades an authorization code (valid for 5 minutes, single
// use) for tokens. An unusable code yields ErrUnauthorized.
func (c *Client) ExchangeCode(ctx context.Context, code, redirectURI string) (Token, error) {
	form := url.Values{}
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	form.Set("redirect_uri", redirectURI)
	return c.token(ctx, form, code)
}

// Refresh gets a new access token. Pipedrive usually returns the same
// refresh token with a renewed 60-day window; callers store whatever comes
// back. A revoked or lapsed refresh token yields ErrUnauthorized.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	form := url.Values{}
	form.Set("grant_type", "refresh_token")
	form.Set("refresh_token", refreshToken)
	return c.token(ctx, form, refreshToken)
}

func (c *Client) token(ctx context.Context, form url.Values, secret string) (Token, error) {
	if c.clientID == "" || c.clientSecret == "" {
		return Token{}, &APIError{Route: RouteToken, Kind: ErrUnauthorized, Message: "oauth client id and secret are not configured"}
	}
	r := request{
		route:       RouteToken,
		method:      http.MethodPost,
		url:         c.oauthURL + "/oauth/token",
		basic:       true,
		contentType: "application/x-www-form-urlencoded",
		body:        []byte(form.Encode()),
		secrets:     []string{secret, c.clientSecret},
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return Token{}, err
	}
	if resp.status != http.StatusOK {
		return Token{}, statusError(r, resp, c.now())
	}
	var w struct {
		AccessToken  flexString `json:"access_token"`
		RefreshToken flexString `json:"refresh_token"`
		TokenType    flexString `json:"token_type"`
		Scope        flexString `json:"scope"`
		ExpiresIn    flexInt    `json:"expires_in"`
		APIDomain    flexString `json:"api_domain"`
	}
	if err := json.Unmarshal(resp.body, &w); err != nil || w.AccessToken == "" {
		// Never wrap err here: a decode error may sit next to a token.
		return Token{}, &APIError{Route: RouteToken, Status: resp.status, Kind: ErrTransport, Message: "undecodable token response", RateLimit: resp.rl}
	}
	return Token{
		AccessToken:  string(w.AccessToken),
		RefreshToken: string(w.RefreshToken),
		TokenType:    string(w.TokenType),
		Scope:        string(w.Scope),
		ExpiresAt:    c.now().Add(time.Duration(w.ExpiresIn.v) * time.Second),
		APIDomain:    string(w.APIDomain),
	}, nil
}

// DomainFromAPIDomain returns the company domain of an OAuth api_domain:
// "https://acme-sales.pipedrive.com" → "acme-sales". Anything that is not a
// single label under pipedrive.com yields "", so a token is never sent to a
// host Pipedrive did not name.
func DomainFromAPIDomain(apiDomain string) string {
	s := strings.TrimSpace(apiDomain)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	sub, ok := strings.CutSuffix(strings.ToLower(u.Hostname()), ".pipedrive.com")
	if !ok || !validDomain(sub) {
		return ""
	}
	return sub
}
