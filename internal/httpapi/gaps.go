package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pipedrive-gateway/pipedrive-gateway/backfill"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions"
)

// Gaps is what the admin API asks of the backfill (SPEC §6, §8).
type Gaps interface {
	Gaps(ctx context.Context, company int64) ([]backfill.Gap, error)
	Request(ctx context.Context, company int64, w backfill.Range, dryRun bool) (backfill.Gap, error)
	Summaries(ctx context.Context) (map[int64]backfill.Summary, error)
}

// companyView is COMPANY with the gap fields.
type companyView struct {
	subscriptions.View
	backfill.Summary
}

// withGaps adds the gap fields to company views; without a backfill the
// views stay as they are.
func withGaps(ctx context.Context, g Gaps, views []subscriptions.View) ([]any, error) {
	out := make([]any, len(views))
	var sums map[int64]backfill.Summary
	if g != nil {
		var err error
		if sums, err = g.Summaries(ctx); err != nil {
			return nil, err
		}
	}
	for i, v := range views {
		if g == nil {
			out[i] = v
			continue
		}
		out[i] = companyView{View: v, Summary: sums[v.CompanyID]}
	}
	return out, nil
}

type gapHandlers struct{ g Gaps }

func (h *gapHandlers) list(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	gaps, err := h.g.Gaps(c.Request().Context(), id)
	if err != nil {
		return gapError(err)
	}
	return c.JSON(http.StatusOK, map[string][]backfill.Gap{"gaps": gaps})
}

func (h *gapHandlers) backfill(c echo.Context) error {
	id, err := companyParam(c)
	if err != nil {
		return err
	}
	var body struct {
		From   time.Time `json:"from"`
		Until  time.Time `json:"until"`
		DryRun bool      `json:"dry_run"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.From.IsZero() || body.Until.IsZero() {
		return echo.NewHTTPError(http.StatusBadRequest, `want {"from": RFC 3339, "until": RFC 3339, "dry_run": bool}`)
	}
	g, err := h.g.Request(c.Request().Context(), id, backfill.Range{From: body.From, Until: body.Until}, body.DryRun)
	if err != nil {
		return gapError(err)
	}
	return c.JSON(http.StatusAccepted, g)
}

func gapError(err error) error {
	switch {
	case errors.Is(err, backfill.ErrNotConnected), errors.Is(err, subscriptions.ErrUnknownCompany):
		return echo.NewHTTPError(http.StatusNotFound, "unknown company")
	case errors.Is(err, backfill.ErrInvalidWindow):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case errors.Is(err, subscriptions.ErrNoLeader):
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return echo.NewHTTPError(http.StatusBadGateway, err.Error())
}
