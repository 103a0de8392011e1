package subscriptions

import (
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/testlog"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

func TestParseCompanyID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{in: "1", want: 1, wantOK: true},
		{in: "9912345", want: 9912345, wantOK: true},
		{in: "9223372036854775807", want: 1<<63 - 1, wantOK: true},
		{in: "9223372036854775808"},
		{in: "99999999999999999999"},
		{in: ""}, {in: "0"}, {in: "012"}, {in: "+12"}, {in: "-12"}, {in: "12a"}, {in: "1 2"},
	}
	for _, tc := range cases {
		got, ok := parseCompanyID(tc.in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("parseCompanyID(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

// loadedCache is a cache whose initial records have been delivered.
func loadedCache(t testing.TB) *credentialCache {
	c := newCredentialCache(nil, testlog.New(t), nil)
	c.synced.Store(true)
	close(c.loaded)
	return c
}

func put(c *credentialCache, id int64, user, pass string) {
	c.apply(store.Change{ID: id, Company: &store.Company{ID: id, WebhookUser: user, Secrets: store.Secrets{WebhookPassword: pass}}})
}

// TestCredentialCache is not parallel: it counts allocations.
func TestCredentialCache(t *testing.T) {
	c := loadedCache(t)
	put(c, 42, "pdgw-0123456789ab", "secret-password")
	put(c, 43, "", "")
	if u, p, ok := c.lookup("42"); !ok || u != "pdgw-0123456789ab" || p != "secret-password" {
		t.Errorf("lookup(42) = %q, %q, %v", u, p, ok)
	}
	if _, _, ok := c.lookup("042"); ok {
		t.Error("a non-canonical id found a company")
	}
	if u, p, ok := c.lookup("43"); !ok || u != "" || p != "" {
		t.Errorf("lookup(43) = %q, %q, %v", u, p, ok)
	}
	put(c, 42, "pdgw-new", "new-password")
	if u, p, _ := c.lookup("42"); u != "pdgw-new" || p != "new-password" {
		t.Errorf("after new credentials: %q, %q", u, p)
	}
	c.apply(store.Change{ID: 7, Err: &store.UnreadableError{ID: 7, Reason: "tampered"}})
	if got := c.ids(); !slices.Equal(got, []int64{7, 42, 43}) {
		t.Errorf("ids = %v, want the readable and the unreadable companies in order", got)
	}
	c.apply(store.Change{ID: 42})
	if _, _, ok := c.lookup("42"); ok {
		t.Error("a deleted company is still known")
	}
	if got := c.ids(); !slices.Equal(got, []int64{7, 43}) {
		t.Errorf("ids after a delete = %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { c.lookup("43") }); n != 0 {
		t.Errorf("lookup allocates %v times", n)
	}
}

// BenchmarkCredentialCache reports the memory the credentials of 100,000
// companies hold, per company (go test -bench CredentialCache ./subscriptions).
func BenchmarkCredentialCache(b *testing.B) {
	const n = 100_000
	users := make([]string, n)
	passwords := make([]string, n)
	for i := range users {
		u, p := newWebhookCredentials()
		users[i], passwords[i] = u, p
	}
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := loadedCache(b)
		for i := range n {
			c.put(int64(i+1), users[i], passwords[i], summary{})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/company")
		if _, _, ok := c.lookup(strconv.Itoa(n)); !ok {
			b.Fatal("lookup failed")
		}
	}
}
