package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// Installer is what the OAuth install flow asks of the subscription
// manager.
type Installer interface {
	AuthorizeURL(state string) string
	ConnectOAuth(ctx context.Context, code string) (subscriptions.View, error)
}

// stateCookie carries the OAuth state between /oauth/install and
// /oauth/callback: the callback must come from the browser that started
// the install (double-submit check against login CSRF).
const stateCookie = "pdgw_oauth_state"

// oauthHandlers serve the install flow (SPEC §5).
type oauthHandlers struct {
	m         Installer
	publicURL string
	log       *slog.Logger
}

func (h *oauthHandlers) install(c echo.Context) error {
	if h.publicURL == "" {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "PUBLIC_URL is not set")
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	state := hex.EncodeToString(b)
	c.SetCookie(&http.Cookie{
		Name: stateCookie, Value: state, Path: "/oauth", MaxAge: 600, HttpOnly: true,
		Secure: strings.HasPrefix(h.publicURL, "https://"), SameSite: http.SameSiteLaxMode,
	})
	return c.Redirect(http.StatusFound, h.m.AuthorizeURL(state))
}

func (h *oauthHandlers) callback(c echo.Context) error {
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
	v, err := h.m.ConnectOAuth(c.Request().Context(), code)
	if errors.Is(err, subscriptions.ErrRejected) {
		h.log.Warn("OAuth code exchange failed", "error", err)
		return oauthPage(c, http.StatusBadGateway, "Pipedrive did not accept the authorisation code; start again.")
	}
	if err != nil {
		h.log.Warn("OAuth connect failed", "error", err)
		return oauthPage(c, http.StatusBadGateway, "The company could not be connected; start again.")
	}
	return oauthPage(c, http.StatusOK, fmt.Sprintf("Connected Pipedrive company %d (%s). Webhook state: %s.", v.CompanyID, v.Domain, v.State))
}

func oauthPage(c echo.Context, status int, msg string) error {
	return c.HTML(status, "<!doctype html><meta charset=utf-8><title>pipedrive-gateway</title><p>"+html.EscapeString(msg)+"</p>")
}
