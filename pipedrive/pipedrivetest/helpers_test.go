package pipedrivetest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// t0 is the start of every test's fake clock.
var t0 = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

// clock is a fake clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// readFake is a fake with company 1 (token tok-1, user 11) on a clock at t0.
func readFake(t *testing.T) (*pipedrivetest.Server, *clock) {
	t.Helper()
	s := pipedrivetest.NewServer(t)
	s.AddCompany(pipedrivetest.Company{ID: 1, Domain: "one", APIToken: token, UserID: 11})
	c := &clock{now: t0}
	s.SetClock(c.Now)
	return s, c
}

// answer is a decoded response.
type answer struct {
	Status         int
	Header         http.Header
	Data           []map[string]any
	AdditionalData map[string]any
}

// get calls path with query q as company 1 and decodes the answer.
func get(t *testing.T, s *pipedrivetest.Server, path string, q url.Values) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data           []map[string]any `json:"data"`
		AdditionalData map[string]any   `json:"additional_data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return answer{Status: resp.StatusCode, Header: resp.Header, Data: body.Data, AdditionalData: body.AdditionalData}
}

// ids lists the "id" of each item; recents entries give theirs too.
func ids(items []map[string]any) []any {
	out := []any{}
	for _, it := range items {
		out = append(out, it["id"])
	}
	return out
}

func ts(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
