package subscriptions

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// RegisterAdmin adds the admin API (SPEC §6) to the ops router. With no
// ADMIN_TOKEN nothing is added, so the routes answer 404.
func (m *Manager) RegisterAdmin(e *echo.Echo) {
	if m.opts.AdminToken == "" {
		return
	}
	g := e.Group("/admin", m.requireAdmin)
	g.GET("/companies", m.listCompanies)
	g.POST("/companies", m.addCompany)
	g.DELETE("/companies/:id", m.deleteCompany)
	g.POST("/companies/:id/reconcile", m.reconcileCompany)
}

func (m *Manager) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	want := []byte(m.opts.AdminToken)
	return func(c echo.Context) error {
		got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="pipedrive-gateway admin"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong admin bearer token")
		}
		return next(c)
	}
}

func (m *Manager) listCompanies(c echo.Context) error {
	companies, err := m.store.List(c.Request().Context())
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	views := make([]View, 0, len(companies))
	for _, co := range companies {
		views = append(views, co.View())
	}
	return c.JSON(http.StatusOK, map[string][]View{"companies": views})
}

func (m *Manager) addCompany(c echo.Context) error {
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
	co, err := m.ConnectToken(c.Request().Context(), strings.TrimSpace(body.APIToken))
	if err != nil {
		if errors.Is(err, ErrRejected) {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		return echo.NewHTTPError(http.StatusBadGateway, err.Error())
	}
	return c.JSON(http.StatusCreated, co.View())
}

func (m *Manager) deleteCompany(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	if err := m.Disconnect(c.Request().Context(), id); err != nil {
		return adminError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (m *Manager) reconcileCompany(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	co, err := m.Reconcile(c.Request().Context(), id)
	if err != nil {
		return adminError(err)
	}
	return c.JSON(http.StatusOK, co.View())
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
	case errors.Is(err, ErrUnknownCompany):
		return echo.NewHTTPError(http.StatusNotFound, "unknown company")
	case errors.Is(err, errNoLeader):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return echo.NewHTTPError(http.StatusBadGateway, err.Error())
}
