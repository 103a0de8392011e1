package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultPipedriveWait is how long a handler that waits on Pipedrive may
// take when Options.PipedriveWait is not set.
const DefaultPipedriveWait = 2 * time.Minute

// answerMargin is the time left to write an answer after the wait.
const answerMargin = 10 * time.Second

// waitsOnPipedrive is for the handlers that wait on Pipedrive (connects,
// reconciles, disconnects, the OAuth callback): their context ends after
// wait, and their connection's read and write deadlines are moved past it,
// so the server's timeouts, which stay short for every other request,
// never cut the answer: a slow Pipedrive gets a late answer, or an error
// saying what may still complete, never an empty reply.
func waitsOnPipedrive(wait time.Duration) echo.MiddlewareFunc {
	if wait <= 0 {
		wait = DefaultPipedriveWait
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			deadline := time.Now().Add(wait + answerMargin)
			rc := http.NewResponseController(c.Response())
			// Errors mean a writer without deadlines (a test recorder):
			// then no server timeout applies either.
			_ = rc.SetWriteDeadline(deadline)
			_ = rc.SetReadDeadline(deadline)
			ctx, cancel := context.WithTimeout(c.Request().Context(), wait)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}
