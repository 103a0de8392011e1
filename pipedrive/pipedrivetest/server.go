// Package pipedrivetest is an in-memory fake of the Pipedrive API at the HTTP
// level, for tests of code that drives the real pipedrive.Client and for local
// trials against a running gateway.
//
// It owns the fake's view of Pipedrive: companies and their tokens, webhooks,
// the objects the read API lists (deals, persons, organizations, activities,
// products, pipelines, stages, leads, notes, users) changing over the fake's
// clock, OAuth, token costs, rate-limit headers and injected faults. It knows
// nothing of the gateway: no NATS, no stores, no configuration.
//
// Where Pipedrive's behaviour is unconfirmed the fake picks one answer and
// documents it on Assumptions, so tests can switch to the other.
//
// NewServer starts a fake for one test; New builds one that Serve runs on a
// listener of your choice (see cmd/fakepipedrive). All methods are safe for
// concurrent use.
package pipedrivetest

import (
	"log"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"sync/atomic"
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
	spent          int // tokens charged, for TokensSpent
	store          objectStore
}

type window struct {
	start time.Time
	count int
}

// Options configure a fake built with New. The zero value is usable.
type Options struct {
	// Now is the fake's clock (see SetClock); default time.Now.
	Now func() time.Time
	// Logf receives misuse of the test helpers (an unknown company, say)
	// when no testing.TB is attached; default log.Printf.
	Logf func(format string, args ...any)
	// DiscardCalls keeps Calls empty; Usage still counts. For long runs,
	// where recording every request would only grow memory.
	DiscardCalls bool
	// Latency delays every API call (see SetLatency).
	Latency time.Duration
}

// Server is the fake. Create it with NewServer or New.
type Server struct {
	t    testing.TB // nil when built with New
	logf func(string, ...any)
	srv  *httptest.Server
	http *httpServer // set by Serve

	mu            sync.Mutex
	now           func() time.Time
	url           string
	companies     map[int64]*company
	ranges        []companyRange
	apiTokens     map[string]int64
	revoked       map[string]bool // range tokens revoked before first use
	hookOwner     map[int64]int64 // webhook id → company id; ids are server-wide
	nextHookID    int64
	calls         []Call
	discardCalls  bool
	usage         map[string]*Usage
	faults        []pendingFault
	companyFaults map[int64]companyFault
	chaosRate     float64
	chaosRand     *rand.Rand
	chaosDelay    time.Duration
	burstLimit    int
	burstOn       bool
	windows       map[string]*window
	assume        Assumptions

	oauth oauthState

	latency     atomic.Int64 // time.Duration
	delay       atomic.Pointer[DelayFunc]
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
}

// New returns a fake that is not yet listening; run it with Serve, or use it
// as an http.Handler (Handler adds the /_fake/ control API).
func New(opts Options) *Server {
	s := &Server{
		logf:         opts.Logf,
		now:          opts.Now,
		companies:    map[int64]*company{},
		apiTokens:    map[string]int64{},
		revoked:      map[string]bool{},
		hookOwner:    map[int64]int64{},
		nextHookID:   880000,
		discardCalls: opts.DiscardCalls,
		usage:        map[string]*Usage{},
		chaosDelay:   300 * time.Millisecond,
		burstLimit:   defaultBurstLimit,
		windows:      map[string]*window{},
		oauth:        newOAuthState(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logf == nil {
		s.logf = log.Printf
	}
	s.latency.Store(int64(opts.Latency))
	return s
}

// NewServer starts a fake closed at the end of the test. Misuse of the
// helpers is reported with t.Errorf.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := New(Options{})
	s.t = t
	s.srv = httptest.NewServer(s)
	s.url = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// errorf reports misuse of a helper: to the test when there is one.
func (s *Server) errorf(format string, args ...any) {
	if s.t != nil {
		s.t.Helper()
		s.t.Errorf(format, args...)
		return
	}
	s.logf(format, args...)
}

// URL is the fake's base URL (scheme and host), for pipedrive.Options.APIURL
// and OAuthURL. It is empty for a fake built with New until Serve runs.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// AddCompany registers (or replaces the settings of) a company.
func (s *Server) AddCompany(c Company) {
	if c.ID <= 0 {
		s.errorf("pipedrivetest: AddCompany: id must be positive, got %d", c.ID)
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
	co := s.company(c.ID)
	if co == nil {
		co = newCompany(c)
		s.companies[c.ID] = co
	} else if co.APIToken != "" {
		delete(s.apiTokens, co.APIToken)
	}
	co.Company = c
	if c.APIToken != "" {
		s.apiTokens[c.APIToken] = c.ID
	}
}

func newCompany(c Company) *company {
	return &company{Company: c, dailyLimit: DefaultDailyBudget, dailyRemaining: DefaultDailyBudget}
}

// SetClock replaces the clock used for OAuth expiry, add_time, update_time
// and the read API's history (default time.Now). Rate-limit windows and
// latency keep wall time, because the client's requests do.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// mustCompany reports an unknown company as misuse. Callers hold s.mu.
func (s *Server) mustCompany(id int64) *company {
	co := s.company(id)
	if co == nil {
		s.errorf("pipedrivetest: unknown company %d", id)
	}
	return co
}
