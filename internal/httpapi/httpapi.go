// Package httpapi builds the gateway's two routers: the public one
// (Pipedrive's webhook deliveries and the OAuth install flow) and the ops
// one (health, readiness, metrics and the admin API). Every route is
// spelled here, once. Handlers are thin: they harden the input, call a
// method of the part that owns the logic and map its error to a status.
//
// It must not hold logic of its own: what a webhook delivery or a connect
// does is decided by the gateway and the subscription manager.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// WebhookRoute is where Pipedrive posts a company's events (SPEC §3).
const WebhookRoute = "/webhooks/pipedrive/:company_id"

// The OAuth install flow, on the public listener.
const (
	oauthInstallRoute  = "/oauth/install"
	oauthCallbackRoute = "/oauth/callback"
)

// WebhookURL returns the subscription URL of a company under publicURL,
// the address Pipedrive reaches the ingress at; nil when publicURL is
// empty, as no webhook can be registered then.
func WebhookURL(publicURL string) func(companyID int64) string {
	if publicURL == "" {
		return nil
	}
	base := publicURL + strings.TrimSuffix(WebhookRoute, ":company_id")
	return func(id int64) string { return base + strconv.FormatInt(id, 10) }
}

// OAuthRedirectURL is the redirect_uri of the OAuth install flow.
func OAuthRedirectURL(publicURL string) string { return publicURL + oauthCallbackRoute }

// Options are what the routers serve. A nil part leaves its routes out.
type Options struct {
	// Webhook answers Pipedrive's deliveries (the gateway).
	Webhook echo.HandlerFunc
	// OAuth, when an OAuth app is configured, serves the install flow.
	OAuth Installer
	// OpenInstall: anyone may install (OAUTH_INSTALL=open); the pages say
	// how to start over accordingly.
	OpenInstall bool
	// PublicURL is the ingress as Pipedrive and browsers reach it.
	PublicURL string
	// PipedriveWait bounds the handlers that wait on Pipedrive (admin
	// writes, the OAuth callback); their answers may take this long plus a
	// margin, past the servers' own timeouts (default
	// DefaultPipedriveWait).
	PipedriveWait time.Duration

	// Ready reports why the gateway cannot take traffic, nil when it can.
	Ready   func(ctx context.Context) error
	Metrics http.Handler
	// Admin serves the admin API when AdminToken is set; without a token
	// the admin routes answer 404.
	Admin      Admin
	AdminToken string
	// Gaps, with the admin API, serves the gap routes and the gap fields of
	// COMPANY; nil when BACKFILL is off.
	Gaps Gaps

	Log *slog.Logger
}

// Public is the router of the ingress listener (HTTP_ADDR).
func Public(o Options) *echo.Echo {
	e := newEcho(o.Log)
	e.POST(WebhookRoute, o.Webhook)
	if o.OAuth != nil {
		h := &oauthHandlers{m: o.OAuth, publicURL: o.PublicURL, open: o.OpenInstall, log: o.Log}
		e.GET(oauthInstallRoute, h.showInstall)
		e.POST(oauthInstallRoute, h.startInstall)
		e.GET(oauthCallbackRoute, h.callback, waitsOnPipedrive(o.PipedriveWait))
	}
	return e
}

// Ops is the router of the cluster-side listener (OPS_ADDR).
func Ops(o Options) *echo.Echo {
	e := newEcho(o.Log)
	e.GET("/healthz", healthz)
	if o.Ready != nil {
		e.GET("/readyz", readyz(o.Ready))
	}
	if o.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(o.Metrics))
	}
	if o.AdminToken != "" && o.Admin != nil {
		h := &adminHandlers{m: o.Admin, gaps: o.Gaps}
		switch {
		case o.OAuth == nil:
			h.noInstalls = "no OAuth app is configured: set PIPEDRIVE_CLIENT_ID and PIPEDRIVE_CLIENT_SECRET"
		case o.PublicURL == "":
			h.noInstalls = "PUBLIC_URL is not set: Pipedrive could not send the browser back"
		default:
			h.installURL = o.PublicURL + oauthInstallRoute
		}
		wait := waitsOnPipedrive(o.PipedriveWait)
		g := e.Group("/admin", requireBearer(o.AdminToken))
		g.GET("/companies", h.list)
		g.POST("/companies", h.add, wait)
		g.GET("/companies/:id", h.get)
		g.DELETE("/companies/:id", h.remove, wait)
		g.POST("/companies/:id/reconcile", h.reconcile, wait)
		g.POST("/installs", h.install)
		if o.Gaps != nil {
			gh := &gapHandlers{g: o.Gaps}
			g.GET("/companies/:id/gaps", gh.list)
			g.POST("/companies/:id/backfill", gh.backfill)
		}
	}
	return e
}
