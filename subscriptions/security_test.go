package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/grants"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// recordMetrics keeps the last Records report.
type recordMetrics struct {
	noMetrics
	mu               sync.Mutex
	oldKey, unreadab int
	reported         bool
}

func (r *recordMetrics) Records(oldKey, unreadable int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.oldKey, r.unreadab, r.reported = oldKey, unreadable, true
}

func (r *recordMetrics) get() (oldKey, unreadable int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.oldKey, r.unreadab, r.reported
}

// rawKV is the companies bucket as someone with write access to it sees it.
func (e *env) rawKV() jetstream.KeyValue {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), "PIPEDRIVE_COMPANIES")
	if err != nil {
		e.t.Fatal(err)
	}
	return kv
}

// callsFor counts the fake's calls made with a company's credentials.
func (e *env) callsFor(id int64) int {
	n := 0
	for _, c := range e.fake.Calls() {
		if c.CompanyID == id {
			n++
		}
	}
	return n
}

// TestUnreadableRecord: a record changed outside the gateway (its clear
// webhook_id set to a foreign webhook, or garbage) affects only its own
// company: listed as error, not reconciled, not reconnected over, its
// deliveries unanswerable (503 at the ingress), readiness naming it, and
// no webhook deleted on its account. The other companies are reconciled
// as before; restoring the record brings its company back, and the
// unreadable gauge back to 0.
func TestUnreadableRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for id, tok := range map[int64]string{41: "tok-41", 42: "tok-42", 43: "tok-43"} {
		e.connect(id, tok)
		if res := e.reconcile(id); res.err != nil {
			t.Fatal(res.err)
		}
	}
	own42 := e.assertOneCorrect(42)
	foreign := e.fake.PutWebhook(42, pipedrive.Webhook{SubscriptionURL: "https://elsewhere.example.com/hook", Name: "crm-sync",
		EventAction: "*", EventObject: "*", Version: "2.0", IsActive: 1, HTTPAuthUser: "them"})
	kv := e.rawKV()
	saved, _ := kv.Get(ctx, "company.42")
	tampered, _ := json.Marshal(map[string]any{"company_id": 42, "auth": "api_token", "webhook_user": "them", "webhook_id": foreign.ID, "sealed": "AAAA"})
	kv.Put(ctx, "company.42", tampered)
	kv.Put(ctx, "company.43", []byte("garbage"))

	// A replica started now.
	metrics := &recordMetrics{}
	m := e.newManager(func(o *Options) { o.Metrics = metrics })
	e.fake.ResetCalls()
	runManager(t, m)
	waitFor(t, func() bool { return m.Ready(ctx) != nil && strings.Contains(m.Ready(ctx).Error(), "company 43") })
	ready := m.Ready(ctx).Error()
	if !strings.Contains(ready, "company 42") || !strings.Contains(ready, "2 company record(s) unreadable") {
		t.Errorf("readiness = %q, want both unreadable records named", ready)
	}
	waitFor(t, func() bool { _, bad, ok := metrics.get(); return ok && bad == 2 })
	for _, id := range []string{"42", "43"} {
		if user, _, ok := m.WebhookCredentials(id); !ok || user != "" {
			t.Errorf("company %s credentials: %q %v, want managed but unreadable", id, user, ok)
		}
	}
	if user, _, ok := m.WebhookCredentials("41"); !ok || user == "" {
		t.Error("company 41 lost its credentials")
	}
	views, err := m.Companies(ctx)
	if err != nil || len(views) != 3 {
		t.Fatalf("companies = %+v, %v", views, err)
	}
	for _, v := range views {
		want := store.StateOK
		if v.CompanyID == 42 || v.CompanyID == 43 {
			want = store.StateError
		}
		if v.State != want {
			t.Errorf("company %d listed as %q (%s), want %q", v.CompanyID, v.State, v.LastError, want)
		}
	}

	// The others keep being reconciled.
	e.fake.DeleteBehindBack(e.company(41).WebhookID)
	if v, err := m.Reconcile(ctx, 41); err != nil || v.State != store.StateOK {
		t.Fatalf("reconcile 41: %+v %v", v, err)
	}
	e.assertOneCorrect(41)
	// The unreadable ones are not, and cannot be reconnected over.
	if _, err := m.Reconcile(ctx, 42); !errors.Is(err, ErrUnreadable) {
		t.Errorf("reconcile 42: %v, want ErrUnreadable", err)
	}
	if res := m.rec.reconcile(ctx, 42); res.err == nil || !res.permanent {
		t.Errorf("a run for 42: %+v, want a permanent error", res)
	}
	if _, err := m.ConnectToken(ctx, "tok-42"); !errors.Is(err, ErrUnreadable) {
		t.Errorf("reconnect 42: %v, want ErrUnreadable", err)
	}
	if err := m.Disconnect(ctx, 42, false); !errors.Is(err, ErrNotDisconnected) {
		t.Errorf("disconnect 42: %v, want ErrNotDisconnected", err)
	}
	if got, _ := kv.Get(ctx, "company.42"); !bytes.Equal(got.Value(), tampered) {
		t.Error("the unreadable record was rewritten")
	}
	if n := e.callsFor(42) + e.callsFor(43); n != 1 { // the /users/me of the refused reconnect
		t.Errorf("%d calls to Pipedrive for the unreadable companies, want only the reconnect's /users/me", n)
	}
	hooks := e.fake.Webhooks(42)
	if len(hooks) != 2 || (hooks[0].ID != own42.ID && hooks[1].ID != own42.ID) {
		t.Errorf("company 42's webhooks = %v, want its own and the foreign one untouched", hooks)
	}

	// Restored, 42 is back; a forced disconnect forgets 43 without a call.
	kv.Put(ctx, "company.42", saved.Value())
	waitFor(t, func() bool { user, _, _ := m.WebhookCredentials("42"); return user == own42.HTTPAuthUser })
	if err := m.Disconnect(ctx, 43, true); err != nil {
		t.Fatalf("forced disconnect of 43: %v", err)
	}
	waitFor(t, func() bool { return m.Ready(ctx) == nil })
	if _, _, ok := m.WebhookCredentials("43"); ok {
		t.Error("43 still managed after a forced disconnect")
	}
	// The gauge follows the records the watch delivers, not only the
	// leader's own writes: no storeSync has passed on this clock.
	waitFor(t, func() bool { _, bad, _ := metrics.get(); return bad == 0 })
	if v, err := m.Reconcile(ctx, 42); err != nil || v.State != store.StateOK {
		t.Fatalf("reconcile 42 restored: %+v %v", v, err)
	}
	e.assertOneCorrect(42)
	if hooks := e.fake.Webhooks(42); len(hooks) != 2 {
		t.Errorf("company 42's webhooks = %v, want its own and the foreign one", hooks)
	}
}

// TestKeyRotation: companies stored under K1, a gateway started with
// STATE_KEY=K2 and STATE_KEY_PREVIOUS=K1 reads every one, seals every
// record again under K2 and reports none left under an old key; then K2
// alone reads them all, with nothing lost and no write at Pipedrive.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	e := newEnv(t, func(o *Options) { o.StateKey = k1 })
	ctx := context.Background()
	before := map[int64]*store.Company{}
	for id, tok := range map[int64]string{41: "tok-41", 42: "tok-42", 43: "tok-43"} {
		e.connect(id, tok)
		if res := e.reconcile(id); res.err != nil {
			t.Fatal(res.err)
		}
		before[id] = e.company(id)
	}
	writes := e.writes()

	metrics := &recordMetrics{}
	rotating := e.newManager(func(o *Options) { o.StateKey, o.PreviousStateKeys, o.Metrics = k2, [][]byte{k1}, metrics })
	stop := runManager(t, rotating)
	waitFor(t, func() bool { old, bad, ok := metrics.get(); return ok && old == 0 && bad == 0 })
	if err := rotating.Ready(ctx); err != nil {
		t.Errorf("readiness while rotating: %v", err)
	}
	stop()

	ring2, _ := keys.New(k2)
	only2, err := store.Open(ctx, e.js, "PIPEDRIVE_COMPANIES", 1, ring2)
	if err != nil {
		t.Fatal(err)
	}
	got, bad, err := only2.List(ctx)
	if err != nil || len(bad) != 0 || len(got) != 3 {
		t.Fatalf("read with K2 alone: %d companies, unreadable %v, %v", len(got), bad, err)
	}
	for _, c := range got {
		b := before[c.ID]
		if only2.OldKey(c) || c.Secrets != b.Secrets || c.WebhookID != b.WebhookID || c.WebhookUser != b.WebhookUser || c.Domain != b.Domain {
			t.Errorf("company %d after rotation: %+v, want %+v under K2", c.ID, c, b)
		}
	}
	after := e.newManager(func(o *Options) { o.StateKey = k2 })
	runManager(t, after)
	waitFor(t, func() bool { return after.Ready(ctx) == nil })
	for id, b := range before {
		if user, pass, _ := after.WebhookCredentials(b.Key()); user != b.WebhookUser || pass != b.Secrets.WebhookPassword {
			t.Errorf("company %d credentials changed by the rotation", id)
		}
	}
	if e.writes() != writes {
		t.Errorf("the rotation made %d writes at Pipedrive", e.writes()-writes)
	}
}

// TestCommandsAuthenticated: a command without a valid MAC, with a time out
// of the window, with a changed body or replayed is refused, and nothing
// changes.
func TestCommandsAuthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.connect(42, "tok-42")
	e.connect(43, "tok-43")
	runManager(t, e.m)
	e.waitLeader()
	for _, id := range []int64{42, 43} {
		if rep, err := e.m.send(ctx, opReconcile, id); err != nil || rep.Error != "" {
			t.Fatalf("reconcile %d: %+v %v", id, rep, err)
		}
	}
	subject := e.m.commandSubject()
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// Another client of the same NATS records the commands it sees.
	recorded := make(chan []byte, 16)
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { recorded <- m.Data }); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	refused := func(name string, data []byte) {
		t.Helper()
		reply, err := nc.Request(subject, data, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var s signed
		if json.Unmarshal(reply.Data, &s); s.Refused == "" {
			t.Errorf("%s: reply %s, want a refusal", name, reply.Data)
		}
	}
	now := e.clock.Now()
	cmd := func(id int64, at time.Time, nonce string) []byte {
		return mustJSON(command{Op: opDisconnect, CompanyID: id, Time: at.UnixMilli(), Nonce: nonce})
	}
	other, _ := keys.New(bytes.Repeat([]byte{1}, 32))
	body := cmd(42, now, "n-1")
	refused("plain_json", []byte(`{"op":"disconnect","company_id":42}`))
	refused("signed_with_another_key", mustJSON(signed{Body: body, Key: other.Current.ID, MAC: other.Current.CommandMAC([]byte(subject), nil, body)}))
	refused("another_key_under_our_key_id", mustJSON(signed{Body: body, Key: e.m.keys.Current.ID, MAC: other.Current.CommandMAC([]byte(subject), nil, body)}))
	refused("signed_for_another_subject", e.m.sign("_PDGW.OTHER.command", nil, body))
	refused("too_old", e.m.sign(subject, nil, cmd(42, now.Add(-2*time.Minute), "n-2")))
	refused("from_the_future", e.m.sign(subject, nil, cmd(42, now.Add(2*time.Minute), "n-3")))

	// A real disconnect of 43, recorded on the way; 43 connected again.
	for len(recorded) > 0 {
		<-recorded
	}
	if err := e.m.Disconnect(ctx, 43, false); err != nil {
		t.Fatal(err)
	}
	data := <-recorded
	e.connect(43, "tok-43")
	if rep, err := e.m.send(ctx, opReconcile, 43); err != nil || rep.Error != "" {
		t.Fatalf("reconcile 43 again: %+v %v", rep, err)
	}
	refused("replayed", data)
	var s signed
	json.Unmarshal(data, &s)
	s.Body = bytes.Replace(s.Body, []byte(`"company_id":43`), []byte(`"company_id":42`), 1)
	refused("body_changed", mustJSON(s))

	for _, id := range []int64{42, 43} {
		e.assertOneCorrect(id)
		if _, _, ok := e.m.WebhookCredentials(e.company(id).Key()); !ok {
			t.Errorf("company %d forgotten", id)
		}
	}
	// The refusals are explained to a replica with the wrong key.
	wrong := e.newManager(func(o *Options) { o.StateKey = bytes.Repeat([]byte{1}, 32) })
	if _, err := wrong.send(ctx, opReconcile, 42); !errors.Is(err, ErrCommandRefused) || !strings.Contains(err.Error(), "STATE_KEY") {
		t.Errorf("command from a replica with another key: %v, want ErrCommandRefused naming STATE_KEY", err)
	}
}

// TestDisconnectRefreshesExpiredToken: an OAuth company whose access token
// has expired is refreshed first, so its webhook is deleted.
func TestDisconnectRefreshesExpiredToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.ResyncInterval = 1000 * time.Hour })
	ctx := context.Background()
	runManager(t, e.m)
	e.waitLeader()
	e.fake.AddCompany(pipedrivetest.Company{ID: 55, Domain: "oauthco"})
	if v, err := e.m.connectOAuth(ctx, e.fake.IssueCode(55), grants.State{}); err != nil || v.State != store.StateOK {
		t.Fatalf("connect: %+v %v", v, err)
	}
	e.assertOneCorrect(55)
	e.clock.Advance(2 * time.Hour) // the access token expired an hour ago
	refreshes := e.fake.CallCount("", pipedrive.RouteToken)
	if err := e.m.Disconnect(ctx, 55, false); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	if n := e.fake.CallCount("", pipedrive.RouteToken) - refreshes; n != 1 {
		t.Errorf("%d token calls, want one refresh", n)
	}
	if hooks := e.fake.Webhooks(55); len(hooks) != 0 {
		t.Errorf("webhooks left at Pipedrive: %v", hooks)
	}
	if _, err := e.inspect.Get(ctx, 55); !errors.Is(err, store.ErrUnknownCompany) {
		t.Errorf("company still stored: %v", err)
	}
}

// TestDisconnectKeepsCompanyWhenWebhookStays: when the webhook cannot be
// deleted the company is kept with the reason; force forgets it anyway.
func TestDisconnectKeepsCompanyWhenWebhookStays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.connect(42, "tok-42")
	runManager(t, e.m)
	e.waitLeader()
	if _, err := e.m.Reconcile(ctx, 42); err != nil {
		t.Fatal(err)
	}
	e.fake.RevokeToken("tok-42")
	err := e.m.Disconnect(ctx, 42, false)
	if !errors.Is(err, ErrNotDisconnected) || !strings.Contains(err.Error(), "list webhooks") {
		t.Fatalf("disconnect with a revoked token: %v, want ErrNotDisconnected with the reason", err)
	}
	if _, err := e.inspect.Get(ctx, 42); err != nil {
		t.Fatalf("company not kept: %v", err)
	}
	if _, _, ok := e.m.WebhookCredentials("42"); !ok {
		t.Error("credentials dropped although the company is kept")
	}
	if err := e.m.Disconnect(ctx, 42, true); err != nil {
		t.Fatalf("forced disconnect: %v", err)
	}
	if _, err := e.inspect.Get(ctx, 42); !errors.Is(err, store.ErrUnknownCompany) {
		t.Errorf("company still stored after a forced disconnect: %v", err)
	}
	if n := len(e.fake.Webhooks(42)); n != 1 {
		t.Errorf("%d webhooks at Pipedrive, want the one that could not be deleted", n)
	}
}
