package pipedrivetest_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// TestFailCompany: one company answers 429 until the fake's clock passes
// the end of its fault; another company is not affected meanwhile.
func TestFailCompany(t *testing.T) {
	t.Parallel()
	s := pipedrivetest.NewServer(t)
	c := &clock{now: t0}
	s.SetClock(c.Now)
	s.AddCompanies(2, 1)
	api := pipedrive.New(pipedrive.Options{APIURL: s.URL()})
	one := pipedrive.Credentials{APIToken: pipedrivetest.RangeToken(1)}
	two := pipedrive.Credentials{APIToken: pipedrivetest.RangeToken(2)}
	s.FailCompany(1, t0.Add(time.Minute), pipedrivetest.Status(http.StatusTooManyRequests).WithRetryAfter(time.Minute))

	_, err := api.ListWebhooks(t.Context(), "", one)
	if !errors.Is(err, pipedrive.ErrRateLimited) || pipedrive.RetryAfter(err) != time.Minute {
		t.Fatalf("company 1 during its fault: %v, want a 429 with Retry-After 1m", err)
	}
	if _, err := api.ListWebhooks(t.Context(), "", two); err != nil {
		t.Errorf("company 2 during company 1's fault: %v", err)
	}
	c.Add(time.Minute)
	if _, err := api.ListWebhooks(t.Context(), "", one); err != nil {
		t.Errorf("company 1 after its fault: %v", err)
	}
}
