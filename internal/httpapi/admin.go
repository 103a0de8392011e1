package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// Admin is what the admin API asks of the subscription manager.
type Admin interface {
	Companies(ctx context.Context) ([]subscriptions.View, error)
	ConnectToken(ctx context.Context, apiToken string) (subscriptions.View, error)
	Reconcile(ctx context.Context, id int64) (subscriptions.View, error)
	Disconnect(ctx context.Context, id int64) error
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

// adminHandlers serve /admin/companies (SPEC §6).
type adminHandlers struct {
	m    Admin
	gaps Gaps // nil without a backfill
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
		return echo.NewHTTPError(http.StatusBadGateway, err.Error())
	}
	return h.one(c, http.StatusCreated, v)
}

func (h *adminHandlers) remove(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	if err := h.m.Disconnect(c.Request().Context(), id); err != nil {
		return adminError(err)
	}
	return c.NoContent(http.StatusNoContent)
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
	case errors.Is(err, subscriptions.ErrNoLeader):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return echo.NewHTTPError(http.StatusBadGateway, err.Error())
}
