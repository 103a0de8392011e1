// Package pipedrivetest is an in-memory fake of the Pipedrive API at the HTTP
// level, for tests of code that drives the real pipedrive.Client.
//
// It keeps webhooks per company, authenticates API tokens and OAuth access
// tokens, sends rate-limit headers, enforces the documented validation and
// the 40-webhook limit, serves the OAuth token endpoint, and can inject
// faults (429, 5xx, timeouts, lost responses, HTML block pages) on demand or
// at random. All methods are safe for concurrent use.
package pipedrivetest

import (
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// Company is a Pipedrive company known to the fake.
type Company struct {
	ID     int64
	Domain string // default "company<ID>"
	// APIToken authenticates as the company's user; may be empty for
	// OAuth-only companies.
	APIToken string
	// UserID is the user the token belongs to; default 1.
	UserID int64
}

const (
	// DefaultDailyBudget is the daily token budget of a new company; set
	// high so that long tests never run out by accident.
	DefaultDailyBudget = 1_000_000
	// webhookLimit is Pipedrive's documented maximum per user.
	webhookLimit = 40
	// burstWindow is Pipedrive's rolling rate-limit window.
	burstWindow       = 2 * time.Second
	defaultBurstLimit = 40
)

type company struct {
	Company
	hooks          map[int64]*pipedrive.Webhook
	maxHooks       int
	dailyLimit     int
	dailyRemaining int
}

type window struct {
	start time.Time
	count int
}

// Server is the fake. Create it with NewServer.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	now        func() time.Time
	companies  map[int64]*company
	apiTokens  map[string]int64
	hookOwner  map[int64]int64 // webhook id → company id; ids are server-wide
	nextHookID int64
	calls      []Call
	faults     []pendingFault
	chaosRate  float64
	chaosRand  *rand.Rand
	chaosDelay time.Duration
	burstLimit int
	burstOn    bool
	windows    map[string]*window

	oauth oauthState
}

// NewServer starts a fake closed at the end of the test.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		now:        time.Now,
		companies:  map[int64]*company{},
		apiTokens:  map[string]int64{},
		hookOwner:  map[int64]int64{},
		nextHookID: 880000,
		chaosDelay: 300 * time.Millisecond,
		burstLimit: defaultBurstLimit,
		windows:    map[string]*window{},
		oauth:      newOAuthState(),
	}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's base URL (scheme and host), for pipedrive.Options.APIURL
// and OAuthURL.
func (s *Server) URL() string { return s.srv.URL }

// AddCompany registers (or replaces the settings of) a company.
func (s *Server) AddCompany(c Company) {
	if c.ID <= 0 {
		s.t.Errorf("pipedrivetest: AddCompany: id must be positive, got %d", c.ID)
		return
	}
	if c.Domain == "" {
		c.Domain = "company" + itoa(c.ID)
	}
	if c.UserID == 0 {
		c.UserID = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	co, ok := s.companies[c.ID]
	if !ok {
		co = &company{hooks: map[int64]*pipedrive.Webhook{}, dailyLimit: DefaultDailyBudget, dailyRemaining: DefaultDailyBudget}
		s.companies[c.ID] = co
	} else if co.APIToken != "" {
		delete(s.apiTokens, co.APIToken)
	}
	co.Company = c
	if c.APIToken != "" {
		s.apiTokens[c.APIToken] = c.ID
	}
}

// SetClock replaces the clock used for OAuth expiry and add_time (default
// time.Now). Rate-limit windows keep wall time, because the client's
// requests do.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetDailyBudget sets a company's remaining daily tokens (and the advertised
// limit when larger). Calls cost what Pipedrive documents: users/me 2,
// webhooks GET 10, POST 10, DELETE 6. At 0 every call answers 429.
func (s *Server) SetDailyBudget(companyID int64, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.mustCompany(companyID)
	if co == nil {
		return
	}
	co.dailyRemaining = tokens
	co.dailyLimit = max(co.dailyLimit, tokens)
}

// SetBurstLimit enforces a limit of n requests per token per 2 s with 429s;
// n <= 0 turns enforcement off (the default), keeping the headers.
func (s *Server) SetBurstLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.burstOn = n > 0
	s.burstLimit = defaultBurstLimit
	if n > 0 {
		s.burstLimit = n
	}
}

// Webhooks returns a copy of a company's webhooks, ordered by id.
func (s *Server) Webhooks(companyID int64) []pipedrive.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.companies[companyID]
	if co == nil {
		return nil
	}
	return co.sortedHooks()
}

// PutWebhook plants a webhook as if someone else had created it (foreign,
// wrong version, wrong credentials, inactive …). A zero ID gets a fresh one;
// an existing ID is replaced. Empty Type becomes "general", zero AddTime now.
// It returns the stored webhook.
func (s *Server) PutWebhook(companyID int64, w pipedrive.Webhook) pipedrive.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.mustCompany(companyID)
	if co == nil {
		return pipedrive.Webhook{}
	}
	if w.ID == 0 {
		w.ID = s.newHookID()
	} else if owner, ok := s.hookOwner[w.ID]; ok && owner != companyID {
		delete(s.companies[owner].hooks, w.ID)
	}
	if w.ID >= s.nextHookID {
		s.nextHookID = w.ID
	}
	w.CompanyID = companyID
	if w.Type == "" {
		w.Type = "general"
	}
	if w.AddTime.IsZero() {
		w.AddTime = s.now().UTC().Truncate(time.Millisecond)
	}
	s.storeHook(co, w)
	return cloneHook(w)
}

// DeleteBehindBack removes a webhook without an API call, as Pipedrive does
// after three days of failed deliveries. It reports whether it existed.
func (s *Server) DeleteBehindBack(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, ok := s.hookOwner[id]
	if !ok {
		return false
	}
	delete(s.companies[owner].hooks, id)
	delete(s.hookOwner, id)
	return true
}

// MaxConcurrentWebhooks is the highest number of webhooks the company ever
// had at one instant; it shows whether a reconciler created before deleting
// or ever created a duplicate.
func (s *Server) MaxConcurrentWebhooks(companyID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if co := s.companies[companyID]; co != nil {
		return co.maxHooks
	}
	return 0
}

// mustCompany reports an unknown company as a test error. Callers hold s.mu.
func (s *Server) mustCompany(id int64) *company {
	co := s.companies[id]
	if co == nil {
		s.t.Errorf("pipedrivetest: unknown company %d", id)
	}
	return co
}

func (s *Server) newHookID() int64 {
	s.nextHookID++
	return s.nextHookID
}

// storeHook saves w and tracks the high-water mark. Callers hold s.mu.
func (s *Server) storeHook(co *company, w pipedrive.Webhook) {
	c := cloneHook(w)
	co.hooks[w.ID] = &c
	s.hookOwner[w.ID] = co.ID
	co.maxHooks = max(co.maxHooks, len(co.hooks))
}

func (co *company) sortedHooks() []pipedrive.Webhook {
	ids := slices.Sorted(maps.Keys(co.hooks))
	out := make([]pipedrive.Webhook, 0, len(ids))
	for _, id := range ids {
		out = append(out, cloneHook(*co.hooks[id]))
	}
	return out
}

// cloneHook copies the pointer fields so that callers cannot change the
// fake's state through a snapshot.
func cloneHook(w pipedrive.Webhook) pipedrive.Webhook {
	if w.RemoveTime != nil {
		t := *w.RemoveTime
		w.RemoveTime = &t
	}
	if w.LastDeliveryTime != nil {
		t := *w.LastDeliveryTime
		w.LastDeliveryTime = &t
	}
	if w.LastHTTPStatus != nil {
		n := *w.LastHTTPStatus
		w.LastHTTPStatus = &n
	}
	return w
}
