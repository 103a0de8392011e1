package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// answer is the small JSON body sent to Pipedrive on success.
type answer struct {
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

func (g *Gateway) handleWebhook(c echo.Context) error {
	req := c.Request()
	companyID := c.Param("company_id")
	if !numericID(companyID) {
		return echo.NewHTTPError(http.StatusNotFound, "company id must be numeric")
	}
	// Credentials first: an unauthenticated caller never makes us read a body.
	if !g.authorize(req, companyID) {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="pipedrive-gateway"`)
		g.log.Info("webhook rejected", "company_id", companyID, "status", http.StatusUnauthorized, "reason", "bad credentials")
		return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong credentials")
	}
	if req.ContentLength > g.opts.MaxBodyBytes {
		return g.tooLarge(companyID)
	}
	buf := g.getBuf()
	defer g.bufs.Put(buf)
	n, err := buf.ReadFrom(io.LimitReader(req.Body, g.opts.MaxBodyBytes+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "failed to read body: "+err.Error())
	}
	if n > g.opts.MaxBodyBytes {
		return g.tooLarge(companyID)
	}
	ev, err := Parse(buf.Bytes(), companyID)
	if err != nil {
		g.log.Info("webhook rejected", "company_id", companyID, "status", http.StatusBadRequest, "reason", err.Error())
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	// The publish outlives a client that hangs up: either JetStream gets the
	// event or it does not, never half.
	ack, err := g.pub.Publish(context.WithoutCancel(req.Context()), ev)
	if err != nil {
		g.log.Warn("publish failed", "company_id", companyID, "event_id", ev.ID,
			"action", ev.Action, "object", ev.Object, "error", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "event not stored, retry later")
	}
	if g.log.Enabled(req.Context(), slog.LevelDebug) {
		g.log.Debug("event published", "company_id", companyID, "event_id", ev.ID, "action", ev.Action,
			"object", ev.Object, "attempt", ev.Attempt, "seq", ack.Sequence, "duplicate", ack.Duplicate)
	}
	return c.JSON(http.StatusOK, answer{Status: "ok", Duplicate: ack.Duplicate})
}

func (g *Gateway) tooLarge(companyID string) error {
	g.log.Info("webhook rejected", "company_id", companyID, "status", http.StatusRequestEntityTooLarge)
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		"body larger than MAX_BODY_BYTES ("+strconv.FormatInt(g.opts.MaxBodyBytes, 10)+" bytes)")
}

func (g *Gateway) getBuf() *bytes.Buffer {
	if b, ok := g.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return bytes.NewBuffer(make([]byte, 0, 8<<10))
}

func numericID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// errorBody is every error answer: a stable code and a message for humans.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

var codes = map[int]string{
	http.StatusBadRequest:            "invalid_payload",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusServiceUnavailable:    "unavailable",
}

// NewEcho returns an echo router whose errors are small JSON bodies.
func NewEcho(log *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, msg := http.StatusInternalServerError, "internal error"
		var he *echo.HTTPError
		if errors.As(err, &he) {
			status = he.Code
			if m, ok := he.Message.(string); ok {
				msg = m
			} else {
				msg = http.StatusText(status)
			}
		} else {
			log.Error("unhandled error", "path", c.Path(), "error", err)
		}
		code, ok := codes[status]
		if !ok {
			code = "error"
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, errorBody{Error: code, Message: msg})
	}
	return e
}
