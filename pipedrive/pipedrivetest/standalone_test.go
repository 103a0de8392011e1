package pipedrivetest_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

func TestServeAndClose(t *testing.T) {
	t.Parallel()
	s := pipedrivetest.New(pipedrivetest.Options{DiscardCalls: true})
	s.AddCompanies(3, 100)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	c := pipedrive.New(pipedrive.Options{APIURL: "http://" + l.Addr().String()})
	me, err := c.Me(t.Context(), "", pipedrive.Credentials{APIToken: pipedrivetest.RangeToken(102)})
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	if me.CompanyID != 102 || me.CompanyDomain != "company102" {
		t.Errorf("Me = %+v, want company 102", me)
	}
	if got := s.URL(); got != "http://"+l.Addr().String() {
		t.Errorf("URL = %q", got)
	}
	if n := len(s.Calls()); n != 0 {
		t.Errorf("DiscardCalls kept %d calls", n)
	}
	if got := s.Usage()[pipedrive.RouteMe]; got != (pipedrivetest.Usage{Calls: 1, Tokens: 2}) {
		t.Errorf("usage = %+v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestAddCompanies(t *testing.T) {
	t.Parallel()
	s := pipedrivetest.NewServer(t)
	s.AddCompanies(100_000, 1)
	s.AddCompany(pipedrivetest.Company{ID: 7, APIToken: "own-7"})
	s.RevokeToken(pipedrivetest.RangeToken(9))
	c := pipedrive.New(pipedrive.Options{APIURL: s.URL()})

	cases := []struct {
		name  string
		token string
		want  int64 // company id; 0 = unauthorized
	}{
		{name: "first", token: "token-1", want: 1},
		{name: "last", token: "token-100000", want: 100_000},
		{name: "past_the_range", token: "token-100001"},
		{name: "leading_zero", token: "token-01"},
		{name: "replaced_by_add_company", token: "token-7"},
		{name: "own_token", token: "own-7", want: 7},
		{name: "revoked", token: "token-9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			me, err := c.Me(t.Context(), "", pipedrive.Credentials{APIToken: tc.token})
			switch {
			case tc.want == 0 && !errors.Is(err, pipedrive.ErrUnauthorized):
				t.Errorf("Me = %v, want ErrUnauthorized", err)
			case tc.want != 0 && (err != nil || me.CompanyID != tc.want):
				t.Errorf("Me = %+v, %v; want company %d", me, err, tc.want)
			}
		})
	}
	// Only the companies used exist.
	if diff := cmp.Diff([]int64{1, 7, 100_000}, s.Companies()); diff != "" {
		t.Errorf("companies (-want +got):\n%s", diff)
	}
}

func TestInFlight(t *testing.T) {
	t.Parallel()
	s := pipedrivetest.NewServer(t)
	s.AddCompanies(8, 1)
	entered, release := make(chan string), make(chan struct{})
	s.SetDelay(func(ctx context.Context, route string) error {
		entered <- route
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	c := pipedrive.New(pipedrive.Options{APIURL: s.URL()})
	var wg sync.WaitGroup
	for id := range int64(8) {
		wg.Go(func() {
			if _, err := c.ListWebhooks(t.Context(), "", pipedrive.Credentials{APIToken: pipedrivetest.RangeToken(id + 1)}); err != nil {
				t.Errorf("list: %v", err)
			}
		})
	}
	for range 8 {
		if route := <-entered; route != pipedrive.RouteListWebhooks {
			t.Errorf("delayed route %q", route)
		}
	}
	if got, max := s.InFlight(), s.MaxInFlight(); got != 8 || max != 8 {
		t.Errorf("in flight = %d, max = %d; want 8 and 8", got, max)
	}
	close(release)
	wg.Wait()
	if got, max := s.InFlight(), s.MaxInFlight(); got != 0 || max != 8 {
		t.Errorf("after: in flight = %d, max = %d; want 0 and 8", got, max)
	}
	s.ResetMaxInFlight()
	if got := s.MaxInFlight(); got != 0 {
		t.Errorf("MaxInFlight after reset = %d", got)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	s := pipedrivetest.NewServer(t)
	s.AddCompanies(1, 1)
	c := pipedrive.New(pipedrive.Options{APIURL: s.URL()})
	cred := pipedrive.Credentials{APIToken: "token-1"}

	s.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Me(ctx, "", cred); !errors.Is(err, pipedrive.ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Me behind an hour of latency = %v, want a timeout", err)
	}
	// A call abandoned during the latency is never handled: nothing charged.
	if got := s.TokensSpent(1); got != 0 {
		t.Errorf("TokensSpent = %d, want 0", got)
	}
	s.SetLatency(0)
	if _, err := c.Me(t.Context(), "", cred); err != nil {
		t.Errorf("Me without latency: %v", err)
	}
}
