package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/backfill"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/service"
	"github.com/pipedrive-gateway/pipedrive-gateway/internal/servicetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

const (
	bfCompany = 9912345
	bfToken   = "token-acme"
	bfAdmin   = "admin-secret"
)

// quick makes the backfill's waits fit a test on the wall clock: the
// watermark every 100 ms, stale after 400 ms, margins of 2 s (Pipedrive's
// times are whole seconds), a 3-second "ban" and second pass.
func quick(o *backfill.Options) {
	o.WatermarkInterval, o.StaleAfter = 100*time.Millisecond, 400*time.Millisecond
	o.Margin, o.BanWindow, o.SecondPass = 2*time.Second, 3*time.Second, 3*time.Second
	o.Poll = 50 * time.Millisecond
}

type bfEnv struct {
	t   *testing.T
	pd  *pipedrivetest.Server
	env map[string]string
	gw  *servicetest.Running
}

func newBFEnv(t *testing.T) *bfEnv {
	e := &bfEnv{t: t, pd: pipedrivetest.NewServer(t), env: servicetest.Env(t)}
	e.pd.AddCompany(pipedrivetest.Company{ID: bfCompany, APIToken: bfToken, Domain: "acme"})
	e.env["PIPEDRIVE_API_URL"] = e.pd.URL()
	e.env["PIPEDRIVE_API_TOKENS"] = bfToken
	e.env["PUBLIC_URL"] = "https://hooks.example.com"
	e.env["ADMIN_TOKEN"] = bfAdmin
	return e
}

func (e *bfEnv) start(tune ...func(*backfill.Options)) {
	e.t.Helper()
	opts := func(o *backfill.Options) {
		quick(o)
		for _, f := range tune {
			f(o)
		}
	}
	e.gw = servicetest.Start(e.t, e.env, slog.LevelInfo, service.WithBackfill(opts), service.WithLeaseTTL(time.Second))
	servicetest.WaitCompaniesOK(e.t, e.gw.OpsURL(), bfAdmin, []int64{bfCompany}, 20*time.Second)
}

// post sends a JSON body to the admin API.
func (e *bfEnv) post(path, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.gw.OpsURL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bfAdmin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// gaps returns the company's gaps through the admin API.
func (e *bfEnv) gaps() []backfill.Gap {
	e.t.Helper()
	status, body := servicetest.Admin(e.gw.OpsURL(), bfAdmin, http.MethodGet, fmt.Sprintf("/admin/companies/%d/gaps", bfCompany))
	if status != http.StatusOK {
		e.t.Fatalf("GET gaps: %d %s", status, body)
	}
	var out struct{ Gaps []backfill.Gap }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Gaps
}

func (e *bfEnv) waitGap(what string, f func(backfill.Gap) bool) backfill.Gap {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for _, g := range e.gaps() {
			if f(g) {
				return g
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("no gap %s: %+v", what, e.gaps())
	return backfill.Gap{}
}

// recovered lists the stream's events marked Pipedrive-Backfill with run,
// as subject:entity id.
func (e *bfEnv) recovered(run string) []string {
	e.t.Helper()
	url := e.gw.NATSURL()
	if url == "" {
		url = e.env["NATS_URL"]
	}
	nc, err := nats.Connect(url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "PIPEDRIVE", jetstream.OrderedConsumerConfig{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if m.Headers().Get("Pipedrive-Backfill") == run && m.Subject() != "pipedrive.gap.company" {
				out = append(out, m.Subject()+":"+m.Headers().Get("ce-subject"))
			}
		}
		if n == 0 {
			return out
		}
	}
}

func TestBackfillAfterDowntime(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	e.start()
	time.Sleep(300 * time.Millisecond) // serving: the watermark is written
	if err := e.gw.Stop(); err != nil {
		t.Fatal(err)
	}

	// While the gateway is down, the company works on.
	deal := e.pd.Put(bfCompany, pipedrivetest.Object{Kind: "deal", Fields: map[string]any{"title": "Made while down"}})
	lead := e.pd.Put(bfCompany, pipedrivetest.Object{Kind: "lead", Fields: map[string]any{"title": "Inbound"}})
	time.Sleep(time.Second)

	e.start()
	g := e.waitGap("outage recovered", func(g backfill.Gap) bool { return g.Reason == backfill.ReasonOutage && g.Ended() })
	want := []string{fmt.Sprintf("pipedrive.create.deal:%d", deal.ID), "pipedrive.create.lead:" + pipedrivetest.LeadUUID(bfCompany, lead.ID)}
	if got := e.recovered(g.ID); g.State != backfill.StateRecovered || !sameSet(got, want) {
		t.Fatalf("gap %+v recovered %v, want %v", g, got, want)
	}

	// The company view carries the gap fields.
	status, body := servicetest.Admin(e.gw.OpsURL(), bfAdmin, http.MethodGet, "/admin/companies")
	if status != http.StatusOK || !strings.Contains(body, `"last_gap":{`) || !strings.Contains(body, `"open_gaps":`) {
		t.Errorf("companies: %d %s", status, body)
	}

	// Metrics by company.
	resp, err := http.Get(e.gw.OpsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pipedrive_gateway_backfill_runs_total{company_id="9912345",result="recovered"} 1`, `pipedrive_gateway_backfill_runs_total{company_id="9912345",result="incomplete"} 0`,
		`pipedrive_gateway_backfill_gaps_total{company_id="9912345"`, `pipedrive_gateway_backfill_tokens_total{company_id="9912345"`,
		`pipedrive_gateway_backfill_events_total{action="create",company_id="9912345"`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The same window again stores nothing new.
	req := fmt.Sprintf(`{"from":%q,"until":%q}`, g.From.Format(time.RFC3339Nano), g.Until.Format(time.RFC3339Nano))
	status, body = e.post(fmt.Sprintf("/admin/companies/%d/backfill", bfCompany), req)
	var again backfill.Gap
	if status != http.StatusAccepted || json.Unmarshal([]byte(body), &again) != nil {
		t.Fatalf("POST backfill: %d %s", status, body)
	}
	again = e.waitGap("second run ended", func(x backfill.Gap) bool { return x.ID == again.ID && x.Ended() })
	if again.State != backfill.StateRecovered || again.Events != 0 || len(e.recovered(again.ID)) != 0 {
		t.Errorf("second run %+v, want nothing new", again)
	}

	// A dry run spends the probe only; it counts what the probe shows (the
	// deal: recents has no leads).
	spent := e.pd.TokensSpent(bfCompany)
	req = fmt.Sprintf(`{"from":%q,"until":%q,"dry_run":true}`, g.From.Format(time.RFC3339Nano), g.Until.Format(time.RFC3339Nano))
	status, body = e.post(fmt.Sprintf("/admin/companies/%d/backfill", bfCompany), req)
	var dry backfill.Gap
	if status != http.StatusAccepted || json.Unmarshal([]byte(body), &dry) != nil || !dry.DryRun || dry.Events != 1 {
		t.Errorf("dry run: %d %s", status, body)
	}
	if d := e.pd.TokensSpent(bfCompany) - spent; d != 20 {
		t.Errorf("dry run cost %d tokens, want the probe's 20", d)
	}
}

func TestBackfillAfterWebhookDeletedBehindOurBack(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	e.start()
	hooks := e.pd.Webhooks(bfCompany)
	if len(hooks) != 1 {
		t.Fatalf("webhooks %+v", hooks)
	}
	// Pipedrive deletes it; what happens next is never delivered.
	e.pd.DeleteBehindBack(hooks[0].ID)
	person := e.pd.Put(bfCompany, pipedrivetest.Object{Kind: "person", Fields: map[string]any{"name": "Unseen"}})
	time.Sleep(time.Second)
	// The next reconcile creates it again.
	if status, body := servicetest.Admin(e.gw.OpsURL(), bfAdmin, http.MethodPost, fmt.Sprintf("/admin/companies/%d/reconcile", bfCompany)); status != http.StatusOK {
		t.Fatalf("reconcile: %d %s", status, body)
	}
	g := e.waitGap("webhook gap recovered", func(g backfill.Gap) bool { return g.Reason == backfill.ReasonWebhookRecreated && g.Ended() })
	want := []string{fmt.Sprintf("pipedrive.create.person:%d", person.ID)}
	if got := e.recovered(g.ID); g.State != backfill.StateRecovered || !sameSet(got, want) {
		t.Errorf("gap %+v recovered %v, want %v", g, got, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

// deliver posts a v2 change of deal 1 as Pipedrive would, with the
// company's webhook credentials, and returns the status.
func (e *bfEnv) deliver(attempt int) int {
	e.t.Helper()
	hooks := e.pd.Webhooks(bfCompany)
	if len(hooks) != 1 {
		e.t.Fatalf("webhooks %+v", hooks)
	}
	body := fmt.Sprintf(`{"meta":{"action":"change","entity":"deal","entity_id":"1","company_id":"%d","id":"%s","timestamp":%q,"version":"2.0","attempt":%d,"webhook_id":"%d"},"data":{"id":1},"previous":{}}`,
		bfCompany, fmt.Sprintf("6b1f0a4e-0000-4000-8000-%012d", time.Now().UnixNano()%1e12), time.Now().UTC().Format(time.RFC3339Nano), attempt, hooks[0].ID)
	status, err := servicetest.Post(e.gw.IngressURL()+fmt.Sprintf("/webhooks/pipedrive/%d", bfCompany), hooks[0].HTTPAuthUser, hooks[0].HTTPAuthPassword, []byte(body))
	if err != nil {
		e.t.Fatal(err)
	}
	return status
}

func TestBackfillAfterPossibleBan(t *testing.T) {
	t.Parallel()
	e := newBFEnv(t)
	ns := natstest.Run(t)
	e.env["NATS_URL"] = ns.ClientURL()
	e.env["STATE_KEY"] = servicetest.StateKey()
	e.env["PUBLISH_TIMEOUT"] = "500ms"
	// A "ban" of 8 s: long enough to make a change inside it after NATS is
	// back, short enough for a test.
	e.start(func(o *backfill.Options) { o.BanWindow = 8 * time.Second })
	if s := e.deliver(1); s != http.StatusOK {
		t.Fatalf("delivery with NATS up: %d", s)
	}

	// NATS stops: first attempts are answered 503, which counts towards a
	// Pipedrive ban; Pipedrive may drop what happens next.
	ns.Stop()
	for range 3 {
		if s := e.deliver(1); s != http.StatusServiceUnavailable {
			t.Fatalf("delivery with NATS down: %d, want 503", s)
		}
	}
	during := e.pd.Put(bfCompany, pipedrivetest.Object{Kind: "deal", Fields: map[string]any{"title": "While NATS was down"}})
	ns.Restart()
	servicetest.WaitStatus(t, e.gw.OpsURL()+"/readyz", http.StatusOK, 20*time.Second)
	// Within the ban window after NATS is back: dropped by a ban as well.
	after := e.pd.Put(bfCompany, pipedrivetest.Object{Kind: "person", Fields: map[string]any{"name": "During the ban"}})

	g := e.waitGap("ban gap recovered", func(g backfill.Gap) bool {
		return strings.Contains(g.Reason, backfill.ReasonFailedAttempt) && g.Ended()
	})
	want := []string{fmt.Sprintf("pipedrive.create.deal:%d", during.ID), fmt.Sprintf("pipedrive.create.person:%d", after.ID)}
	got := e.recovered(g.ID)
	if g.State != backfill.StateRecovered || !sameSet(got, want) {
		t.Errorf("gap %+v recovered %v, want %v", g, got, want)
	}
}
