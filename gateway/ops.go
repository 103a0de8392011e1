package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// ReadyFunc reports nil when the service can take traffic.
type ReadyFunc func(ctx context.Context) error

// NewOps builds the cluster-side router with /healthz and /readyz; metrics
// and the admin API are added to it by their owners.
func NewOps(ready ReadyFunc, log *slog.Logger) *echo.Echo {
	e := NewEcho(log)
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	return e
}
