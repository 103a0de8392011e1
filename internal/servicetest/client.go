package servicetest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
)

// Post delivers body to url with Basic credentials, as Pipedrive does, and
// returns the status; 0 and the error when no answer came.
func Post(url, user, pass string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Status GETs url and returns the status code, 0 on a transport error.
func Status(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// WaitStatus polls url until it answers want, for at most timeout, and
// returns how long that took.
func WaitStatus(t testing.TB, url string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := Status(url)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s answered %d for %v, want %d", url, got, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Admin calls the admin API at ops with the bearer token and returns the
// status and body; 0 and the error text when no answer came.
func Admin(ops, token, method, path string) (int, string) {
	req, _ := http.NewRequest(method, ops+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Company is the public part of a company in the admin API.
type Company struct {
	CompanyID int64  `json:"company_id"`
	State     string `json:"state"`
	WebhookID int64  `json:"webhook_id"`
}

// Companies lists the companies through the admin API at ops.
func Companies(t testing.TB, ops, token string) map[int64]Company {
	t.Helper()
	status, body := Admin(ops, token, http.MethodGet, "/admin/companies")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/companies: %d %s", status, body)
	}
	var out struct{ Companies []Company }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET /admin/companies: %v: %s", err, body)
	}
	m := map[int64]Company{}
	for _, c := range out.Companies {
		m[c.CompanyID] = c
	}
	return m
}

// WaitCompaniesOK waits until every id is listed with state ok.
func WaitCompaniesOK(t testing.TB, ops, token string, ids []int64, timeout time.Duration) map[int64]Company {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cs := Companies(t, ops, token)
		ok := true
		for _, id := range ids {
			ok = ok && cs[id].State == "ok"
		}
		if ok {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("companies not reconciled after %v: %+v", timeout, cs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StateKey is a random STATE_KEY.
func StateKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a gateway started as a process (which cannot report a ":0" port).
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
}
