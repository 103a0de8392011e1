package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// Installer is what the OAuth install flow asks of the subscription
// manager; who may install, and what an install may replace, is decided
// there (SPEC §5).
type Installer interface {
	CheckInstall(ctx context.Context, ticket string) error
	StartInstall(ctx context.Context, ticket string) (authorizeURL, browser string, err error)
	FinishInstall(ctx context.Context, cb subscriptions.Callback) (subscriptions.View, error)
}

// browserCookie carries the browser's secret of an install in progress
// from POST /oauth/install to /oauth/callback: the callback must come from
// the browser that started the install.
const browserCookie = "pdgw_oauth"

// oauthHandlers serve the install flow: GET /oauth/install shows what is
// about to happen (a link preview fetching it uses nothing up), POST
// /oauth/install uses the ticket and sends the browser to Pipedrive, and
// /oauth/callback finishes.
type oauthHandlers struct {
	m         Installer
	publicURL string
	open      bool // OAUTH_INSTALL=open
	log       *slog.Logger
}

// again says how to start an install over.
func (h *oauthHandlers) again() string {
	if h.open {
		return "To connect the company, start again at " + h.publicURL + oauthInstallRoute + "."
	}
	return "To connect the company, start again with a new install link from your administrator (each link works once)."
}

// cookiePath is the path of the OAuth routes under PUBLIC_URL.
func (h *oauthHandlers) cookiePath() string {
	u, err := url.Parse(h.publicURL)
	if err != nil {
		return "/oauth"
	}
	return strings.TrimRight(u.Path, "/") + "/oauth"
}

func (h *oauthHandlers) showInstall(c echo.Context) error {
	if h.publicURL == "" {
		return page(c, http.StatusServiceUnavailable, pageNoPublicURL)
	}
	ticket := c.QueryParam("ticket")
	if err := h.m.CheckInstall(c.Request().Context(), ticket); err != nil {
		return h.installError(c, err, ticket)
	}
	return page(c, http.StatusOK, installPage(h.publicURL+oauthInstallRoute, ticket, hostOf(h.publicURL)))
}

func (h *oauthHandlers) startInstall(c echo.Context) error {
	if h.publicURL == "" {
		return page(c, http.StatusServiceUnavailable, pageNoPublicURL)
	}
	c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, 4<<10)
	ticket := c.FormValue("ticket")
	authorize, browser, err := h.m.StartInstall(c.Request().Context(), ticket)
	if err != nil {
		return h.installError(c, err, ticket)
	}
	c.SetCookie(&http.Cookie{
		Name: browserCookie, Value: browser, Path: h.cookiePath(),
		MaxAge: int(subscriptions.InstallStateLifetime / time.Second), HttpOnly: true,
		Secure: strings.HasPrefix(h.publicURL, "https://"), SameSite: http.SameSiteLaxMode,
	})
	return c.Redirect(http.StatusSeeOther, authorize)
}

func (h *oauthHandlers) installError(c echo.Context, err error, ticket string) error {
	if errors.Is(err, subscriptions.ErrInstallForbidden) {
		if ticket == "" {
			return page(c, http.StatusForbidden, pageNeedTicket)
		}
		return page(c, http.StatusForbidden, pageBadTicket)
	}
	h.log.Warn("OAuth install could not start", "error", err)
	return page(c, http.StatusServiceUnavailable, tryLaterPage(h.again()))
}

func (h *oauthHandlers) callback(c echo.Context) error {
	q := c.QueryParams()
	cb := subscriptions.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	if ck, err := c.Cookie(browserCookie); err == nil {
		cb.Browser = ck.Value
	}
	// The cookie has served its purpose, whatever happens next.
	c.SetCookie(&http.Cookie{Name: browserCookie, Path: h.cookiePath(), MaxAge: -1, HttpOnly: true,
		Secure: strings.HasPrefix(h.publicURL, "https://"), SameSite: http.SameSiteLaxMode})
	v, err := h.m.FinishInstall(c.Request().Context(), cb)
	var ie *subscriptions.InstallError
	switch {
	case err == nil:
		return page(c, http.StatusOK, connectedPage(v, hostOf(h.publicURL)))
	case errors.Is(err, subscriptions.ErrBadState):
		return page(c, http.StatusBadRequest, badStatePage(h.again()))
	case errors.Is(err, subscriptions.ErrDenied):
		return page(c, http.StatusBadRequest, deniedPage(h.again()))
	case errors.As(err, &ie) && errors.Is(err, subscriptions.ErrAPITokenConnected):
		h.log.Warn("OAuth install refused: the company is connected with an API token", "company_id", ie.CompanyID)
		return page(c, http.StatusConflict, apiTokenPage(ie.CompanyID))
	case errors.As(err, &ie) && errors.Is(err, subscriptions.ErrWrongCompany):
		h.log.Warn("OAuth install refused: authorised for another company than the ticket's", "error", err)
		return page(c, http.StatusConflict, wrongCompanyPage(ie.Want, ie.CompanyID))
	case errors.Is(err, subscriptions.ErrUnreadable):
		h.log.Warn("OAuth install refused: the company's record is unreadable", "error", err)
		return page(c, http.StatusConflict, pageUnreadable)
	case errors.Is(err, subscriptions.ErrRejected):
		h.log.Warn("OAuth code exchange failed", "error", err)
		return page(c, http.StatusBadGateway, rejectedPage(h.again()))
	}
	h.log.Warn("OAuth connect failed", "error", err)
	return page(c, http.StatusBadGateway, tryLaterPage(h.again()))
}

func hostOf(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		return u.Host
	}
	return "the gateway"
}
