package subscriptions

import (
	"context"
	"crypto/subtle"
	"fmt"
	"html"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// stateCookie carries the OAuth state between /oauth/install and
// /oauth/callback: the callback must come from the browser that started
// the install (double-submit check against login CSRF).
const stateCookie = "pdgw_oauth_state"

// RegisterOAuth adds the install flow to the public router when an OAuth
// app is configured.
func (m *Manager) RegisterOAuth(e *echo.Echo) {
	if !m.opts.OAuthEnabled {
		return
	}
	e.GET("/oauth/install", m.oauthInstall)
	e.GET("/oauth/callback", m.oauthCallback)
}

func (m *Manager) redirectURI() string { return m.opts.PublicURL + "/oauth/callback" }

func (m *Manager) oauthInstall(c echo.Context) error {
	if m.opts.PublicURL == "" {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "PUBLIC_URL is not set")
	}
	state := randomHex(32)
	c.SetCookie(&http.Cookie{
		Name: stateCookie, Value: state, Path: "/oauth", MaxAge: 600, HttpOnly: true,
		Secure: strings.HasPrefix(m.opts.PublicURL, "https://"), SameSite: http.SameSiteLaxMode,
	})
	return c.Redirect(http.StatusFound, m.api.AuthorizeURL(m.redirectURI(), state))
}

func (m *Manager) oauthCallback(c echo.Context) error {
	q := c.QueryParams()
	cookie, err := c.Cookie(stateCookie)
	if err != nil || q.Get("state") == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(q.Get("state"))) != 1 {
		return oauthPage(c, http.StatusBadRequest, "This install link is invalid or has expired. Start again from /oauth/install.")
	}
	c.SetCookie(&http.Cookie{Name: stateCookie, Path: "/oauth", MaxAge: -1})
	if e := q.Get("error"); e != "" {
		return oauthPage(c, http.StatusBadRequest, "Pipedrive did not authorise the app ("+e+").")
	}
	code := q.Get("code")
	if code == "" {
		return oauthPage(c, http.StatusBadRequest, "Pipedrive sent no authorisation code.")
	}
	ctx := c.Request().Context()
	tok, err := m.api.ExchangeCode(ctx, code, m.redirectURI())
	if err != nil {
		m.log.Warn("OAuth code exchange failed", "error", err)
		return oauthPage(c, http.StatusBadGateway, "Pipedrive did not accept the authorisation code; start again.")
	}
	co, err := m.ConnectOAuth(c.Request().Context(), tok)
	if err != nil {
		m.log.Warn("OAuth connect failed", "error", err)
		return oauthPage(c, http.StatusBadGateway, "The company could not be connected; start again.")
	}
	return oauthPage(c, http.StatusOK, fmt.Sprintf("Connected Pipedrive company %d (%s). Webhook state: %s.", co.ID, co.Domain, co.Status.State))
}

// ConnectOAuth stores an OAuth-installed company and reconciles it.
func (m *Manager) ConnectOAuth(ctx context.Context, tok pipedrive.Token) (*Company, error) {
	me, err := m.api.Me(ctx, pipedrive.DomainFromAPIDomain(tok.APIDomain), pipedrive.Credentials{AccessToken: tok.AccessToken})
	if err != nil {
		return nil, fmt.Errorf("failed to identify the company: %w", err)
	}
	c, _, err := m.upsert(ctx, me, AuthOAuth, func(s *Secrets) {
		s.AccessToken, s.RefreshToken, s.AccessExpiresAt = tok.AccessToken, tok.RefreshToken, tok.ExpiresAt
	})
	if err != nil {
		return nil, err
	}
	return m.reconcileAndGet(ctx, c.ID)
}

func oauthPage(c echo.Context, status int, msg string) error {
	return c.HTML(status, "<!doctype html><meta charset=utf-8><title>pipedrive-gateway</title><p>"+html.EscapeString(msg)+"</p>")
}
