package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// Admin is what the admin API asks of the subscription manager.
type Admin interface {
	Companies(ctx context.Context) ([]subscriptions.View, error)
	Company(ctx context.Context, id int64) (subscriptions.View, error)
	ConnectToken(ctx context.Context, apiToken string) (subscriptions.View, error)
	Reconcile(ctx context.Context, id int64) (subscriptions.View, error)
	Disconnect(ctx context.Context, id int64, force bool) error
	NewInstallTicket(ctx context.Context, companyID int64) (ticket string, expiresAt time.Time, err error)
}

// requireBearer lets a request through only with the admin bearer token,
// compared in constant time.
func requireBearer(token string) echo.MiddlewareFunc {
	want := []byte(token)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="pipedrive-gateway admin"`)
				return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong admin bearer token")
			}
			return next(c)
		}
	}
}

// adminHandlers serve /admin/companies and /admin/installs (SPEC §6).
type adminHandlers struct {
	m    Admin
	gaps Gaps // nil without a backfill
	// installURL is the install page's address; empty when installs
	// cannot be made (no OAuth app or no PUBLIC_URL), and why.
	installURL, noInstalls string
}

func (h *adminHandlers) list(c echo.Context) error {
	views, err := h.m.Companies(c.Request().Context())
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	out, err := withGaps(c.Request().Context(), h.gaps, views)
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusOK, map[string][]any{"companies": out})
}

// one answers a single COMPANY, with its gap fields when they can be read.
func (h *adminHandlers) one(c echo.Context, status int, v subscriptions.View) error {
	out, err := withGaps(c.Request().Context(), h.gaps, []subscriptions.View{v})
	if err != nil {
		return c.JSON(status, v)
	}
	return c.JSON(status, out[0])
}

func (h *adminHandlers) add(c echo.Context) error {
	var body struct {
		APIToken string `json:"api_token"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, `want {"api_token": "…"}`)
	}
	if strings.TrimSpace(body.APIToken) == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "api_token is empty")
	}
	v, err := h.m.ConnectToken(c.Request().Context(), strings.TrimSpace(body.APIToken))
	if err != nil {
		if errors.Is(err, subscriptions.ErrRejected) {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		return adminError(err)
	}
	return h.one(c, http.StatusCreated, v)
}

func (h *adminHandlers) get(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	v, err := h.m.Company(c.Request().Context(), id)
	if err != nil {
		return adminError(err)
	}
	return c.JSON(http.StatusOK, v)
}

func (h *adminHandlers) remove(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	force, err := strconv.ParseBool(c.QueryParam("force"))
	if c.QueryParam("force") != "" && err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "force must be true or false")
	}
	if err := h.m.Disconnect(c.Request().Context(), id, force); err != nil {
		return adminError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// install makes a one-time OAuth install link, optionally for the company
// it may re-authorise.
func (h *adminHandlers) install(c echo.Context) error {
	if h.installURL == "" {
		return echo.NewHTTPError(http.StatusConflict, h.noInstalls)
	}
	var body struct {
		CompanyID int64 `json:"company_id"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return echo.NewHTTPError(http.StatusBadRequest, `want no body, or {"company_id": N}`)
	}
	if body.CompanyID < 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "company_id must be positive")
	}
	ticket, expires, err := h.m.NewInstallTicket(c.Request().Context(), body.CompanyID)
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusCreated, map[string]any{
		"url":        h.installURL + "?" + url.Values{"ticket": {ticket}}.Encode(),
		"expires_at": expires,
	})
}

func (h *adminHandlers) reconcile(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	v, err := h.m.Reconcile(c.Request().Context(), id)
	if err != nil {
		return adminError(err)
	}
	return h.one(c, http.StatusOK, v)
}

func companyParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusNotFound, "unknown company")
	}
	return id, nil
}

func adminError(err error) error {
	switch {
	case errors.Is(err, subscriptions.ErrUnknownCompany):
		return echo.NewHTTPError(http.StatusNotFound, "unknown company")
	case errors.Is(err, subscriptions.ErrUnreadable):
		return echo.NewHTTPError(http.StatusConflict, err.Error()+
			"; fix STATE_KEY or STATE_KEY_PREVIOUS, or disconnect it with ?force=true and connect it again")
	case errors.Is(err, subscriptions.ErrNoLeader), errors.Is(err, subscriptions.ErrCommandRefused):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, subscriptions.ErrNoAnswer), errors.Is(err, context.DeadlineExceeded):
		return echo.NewHTTPError(http.StatusGatewayTimeout, err.Error())
	}
	// ErrNotDisconnected and every failure at Pipedrive.
	return echo.NewHTTPError(http.StatusBadGateway, err.Error())
}
