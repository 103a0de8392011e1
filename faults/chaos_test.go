package faults

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

const publicURL = "https://hooks.example.com"

func hookURL(company int64) string {
	return fmt.Sprintf("%s/webhooks/pipedrive/%d", publicURL, company)
}

// chaosWatch samples every company's webhooks and remembers the most of
// ours that the gateway itself had at one instant (planted copies are not
// the gateway's doing, so they are counted apart).
type chaosWatch struct {
	fake *pipedrivetest.Server
	mu   sync.Mutex
	// planted and foreign are ids the test put there itself.
	planted, foreign map[int64]bool
	maxOurs          map[int64]int // the gateway's own hooks of ours
	maxAllOurs       map[int64]int // including planted copies
	samples          int
}

func (w *chaosWatch) isOurs(company int64, user string, h pipedrive.Webhook) bool {
	return h.SubscriptionURL == hookURL(company) || (h.Name == "pipedrive-gateway" && h.HTTPAuthUser == user)
}

func (w *chaosWatch) sample(companies []int64, users map[int64]string) {
	for _, id := range companies {
		hooks := w.fake.Webhooks(id)
		w.mu.Lock()
		ours, all := 0, 0
		for _, h := range hooks {
			if !w.isOurs(id, users[id], h) {
				continue
			}
			all++
			if !w.planted[h.ID] {
				ours++
			}
		}
		w.maxOurs[id] = max(w.maxOurs[id], ours)
		w.maxAllOurs[id] = max(w.maxAllOurs[id], all)
		w.samples++
		w.mu.Unlock()
	}
}

// TestPipedriveChaos is the soak: two replicas on one NATS, five companies,
// 20 % of Pipedrive API calls failing (429, 500, timeouts above the client
// timeout, lost responses), webhooks deleted, duplicated and spoiled behind
// the gateway's back every few seconds, and one replica replaced halfway.
// Afterwards every company has exactly one correct webhook that accepts
// deliveries, the gateway never had more than two of its own at once, foreign
// webhooks were never touched, and the API calls stay within budget.
func TestPipedriveChaos(t *testing.T) {
	t.Parallel()
	soak := pick(45*time.Second, 10*time.Minute)
	const (
		resync    = 2 * time.Second
		chaosRate = 0.2
		seed      = 20250602
	)
	fake := pipedrivetest.NewServer(t)
	companies := []int64{101, 102, 103, 104, 105}
	tokens := ""
	for i, id := range companies {
		fake.AddCompany(pipedrivetest.Company{ID: id, APIToken: fmt.Sprintf("tok-%d", id)})
		if i > 0 {
			tokens += ","
		}
		tokens += fmt.Sprintf("tok-%d", id)
	}
	ns := natstest.Run(t)
	stateKey := servicetest.StateKey()
	newEnv := func() map[string]string {
		return map[string]string{
			"HTTP_ADDR":            "127.0.0.1:0",
			"OPS_ADDR":             "127.0.0.1:0",
			"NATS_URL":             ns.ClientURL(),
			"STATE_KEY":            stateKey,
			"PIPEDRIVE_API_URL":    fake.URL(),
			"PIPEDRIVE_API_TOKENS": tokens,
			"PUBLIC_URL":           publicURL,
			"RESYNC_INTERVAL":      resync.String(),
			"ADMIN_TOKEN":          "admin-secret",
		}
	}
	opts := []service.Option{service.WithLeaseTTL(2 * time.Second), service.WithPipedriveTimeout(300 * time.Millisecond)}
	a := servicetest.Start(t, newEnv(), slog.LevelError, opts...)
	b := servicetest.Start(t, newEnv(), slog.LevelError, opts...)
	servicetest.WaitCompaniesOK(t, b.OpsURL(), "admin-secret", companies, 30*time.Second)
	users := map[int64]string{}
	for _, id := range companies {
		hooks := fake.Webhooks(id)
		if len(hooks) != 1 {
			t.Fatalf("company %d: %d webhooks before the soak, want 1", id, len(hooks))
		}
		users[id] = hooks[0].HTTPAuthUser
	}
	first := fake.Webhooks(companies[0])[0]
	load := newLoader(b.IngressURL(), companies[0], first.HTTPAuthUser, first.HTTPAuthPassword, "chaos")
	load.pace = 20 * time.Millisecond
	load.start(2)
	defer load.stop()

	w := &chaosWatch{fake: fake, planted: map[int64]bool{}, foreign: map[int64]bool{},
		maxOurs: map[int64]int{}, maxAllOurs: map[int64]int{}}
	fake.ResetCalls()
	fake.SetChaosDelay(time.Second)
	fake.SetChaos(chaosRate, seed)
	soakStart := time.Now()

	var wg sync.WaitGroup
	quit := make(chan struct{})
	wg.Add(2)
	go func() { // the sampler
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			case <-time.After(10 * time.Millisecond):
				w.sample(companies, users)
			}
		}
	}()
	drift := map[string]int{}
	driftPer := map[int64]int{}
	go func() { // drift behind the gateway's back
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		for {
			select {
			case <-quit:
				return
			case <-time.After(time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))):
			}
			id := companies[rng.IntN(len(companies))]
			var ours []pipedrive.Webhook
			for _, h := range fake.Webhooks(id) {
				if w.isOurs(id, users[id], h) {
					ours = append(ours, h)
				}
			}
			kind := []string{"delete", "duplicate", "wrong_version", "wrong_password", "foreign"}[rng.IntN(5)]
			if len(ours) == 0 && kind != "foreign" {
				continue
			}
			var h pipedrive.Webhook
			if len(ours) > 0 {
				h = ours[rng.IntN(len(ours))]
			}
			h.ID, h.AddTime = 0, time.Time{}
			w.mu.Lock()
			switch kind {
			case "delete":
				fake.DeleteBehindBack(ours[rng.IntN(len(ours))].ID)
			case "duplicate":
				w.planted[fake.PutWebhook(id, h).ID] = true
			case "wrong_version":
				h.Version = "1.0"
				w.planted[fake.PutWebhook(id, h).ID] = true
			case "wrong_password":
				h.HTTPAuthPassword = "not-the-right-one"
				w.planted[fake.PutWebhook(id, h).ID] = true
			case "foreign":
				if len(w.foreign) >= 10 {
					w.mu.Unlock()
					continue
				}
				w.foreign[fake.PutWebhook(id, pipedrive.Webhook{
					EventAction: "*", EventObject: "deal", SubscriptionURL: "https://zapier.example.com/hooks/1",
					Version: "2.0", IsActive: 1, Name: "someone else", HTTPAuthUser: "zap", HTTPAuthPassword: "zap",
				}).ID] = true
			}
			drift[kind]++
			driftPer[id]++
			w.mu.Unlock()
		}
	}()

	// Replace one replica halfway: the lease moves if it was the leader.
	time.Sleep(soak / 2)
	if err := a.Stop(); err != nil {
		t.Errorf("stopping replica a: %v", err)
	}
	servicetest.Start(t, newEnv(), slog.LevelError, opts...)
	time.Sleep(soak - time.Since(soakStart))
	close(quit)
	wg.Wait()
	load.stop()
	soakTime := time.Since(soakStart)

	// Calm: chaos off, one reconcile pass per company.
	fake.SetChaos(0, seed)
	time.Sleep(1500 * time.Millisecond) // let chaos timeouts in flight end
	callsDuringSoak := fake.Calls()
	for _, id := range companies {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := servicetest.Admin(b.OpsURL(), "admin-secret", http.MethodPost, fmt.Sprintf("/admin/companies/%d/reconcile", id))
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reconcile of %d after the soak: %d %s", id, code, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	w.sample(companies, users)

	cs := servicetest.Companies(t, b.OpsURL(), "admin-secret")
	perCompany := map[int64]int{}
	for _, c := range callsDuringSoak {
		perCompany[c.CompanyID]++
	}
	minutes := soakTime.Minutes()
	var rates []string
	for _, id := range companies {
		hooks := fake.Webhooks(id)
		var ours []pipedrive.Webhook
		for _, h := range hooks {
			if w.isOurs(id, users[id], h) {
				ours = append(ours, h)
			}
		}
		switch {
		case len(ours) != 1:
			t.Errorf("company %d: %d webhooks of ours after the calm pass, want 1: %+v", id, len(ours), ours)
		case ours[0].Version != "2.0" || ours[0].EventAction != "*" || ours[0].EventObject != "*" || !ours[0].Active() ||
			ours[0].SubscriptionURL != hookURL(id) || ours[0].HTTPAuthUser != users[id]:
			t.Errorf("company %d: webhook not correct: %+v", id, ours[0])
		case cs[id].WebhookID != ours[0].ID || cs[id].State != "ok":
			t.Errorf("company %d: admin API says webhook %d state %q, Pipedrive has %d", id, cs[id].WebhookID, cs[id].State, ours[0].ID)
		default:
			if got := deliver(t, b.IngressURL(), id, ours[0].HTTPAuthUser, ours[0].HTTPAuthPassword, fmt.Sprintf("final-%d", id)); got != http.StatusOK {
				t.Errorf("company %d: delivery with the registered credentials = %d, want 200", id, got)
			}
		}
		w.mu.Lock()
		maxOurs, maxAll := w.maxOurs[id], w.maxAllOurs[id]
		w.mu.Unlock()
		if maxOurs > 2 {
			t.Errorf("company %d: the gateway had %d webhooks of its own at one instant, want at most 2", id, maxOurs)
		}
		// Budget per company: one list per resync (jitter -10 %), two writes
		// per injected drift, one users/me and one list per leadership start
		// (3: first leader, takeover, spare), all times 1/(1-rate) for the
		// calls chaos fails, plus 10 for the retries of lost creates/deletes.
		expectLists := soakTime.Seconds() / (0.9 * resync.Seconds())
		budget := int((expectLists+2*float64(driftPer[id])+3*2)/(1-chaosRate)) + 10
		rates = append(rates, fmt.Sprintf("%d:calls=%d(%.0f/min),budget=%d,max_own_hooks=%d,max_incl_planted=%d",
			id, perCompany[id], float64(perCompany[id])/minutes, budget, maxOurs, maxAll))
		if perCompany[id] > budget {
			t.Errorf("company %d: %d API calls in %v, budget %d", id, perCompany[id], soakTime.Round(time.Second), budget)
		}
	}
	w.mu.Lock()
	foreignTotal := len(w.foreign)
	w.mu.Unlock()
	foreignLeft := 0
	for _, id := range companies {
		for _, h := range fake.Webhooks(id) {
			if w.foreign[h.ID] {
				foreignLeft++
			}
		}
	}
	if foreignLeft != foreignTotal {
		t.Errorf("%d of %d foreign webhooks left, want all", foreignLeft, foreignTotal)
	}
	faults := map[string]int{}
	for _, c := range callsDuringSoak {
		if c.Fault != "" {
			faults[c.Fault]++
		}
	}
	acked := load.acked()
	stored := servicetest.StreamIDs(t, ns.ClientURL(), "PIPEDRIVE")
	missing := lost(acked, stored)
	t.Logf("sent=%d acked=%d stored=%d lost=%d soak=%v api_calls=%d injected_api_faults=%v drift=%v foreign_untouched=%d/%d samples=%d per_company=%v",
		load.sent.Load(), len(acked), storedWithPrefix(stored, "chaos"), missing, soakTime.Round(time.Second),
		len(callsDuringSoak), faults, drift, foreignLeft, foreignTotal, w.samples, rates)
	if missing > 0 {
		t.Errorf("%d acknowledged events are missing from the stream", missing)
	}
}
