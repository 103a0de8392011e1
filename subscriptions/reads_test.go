package subscriptions

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

func TestWebhookFindings(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []WebhookFinding
	e := newEnv(t, func(o *Options) {
		o.OnWebhook = func(_ context.Context, id int64, f WebhookFinding) {
			mu.Lock()
			defer mu.Unlock()
			if id == 42 {
				got = append(got, f)
			}
		}
	})
	e.connect(42, "tok-42")
	first := e.clock.Now().UTC()
	e.reconcile(42) // created
	e.clock.Advance(time.Hour)
	second := e.clock.Now().UTC()
	e.reconcile(42) // in place
	e.clock.Advance(time.Hour)
	e.fake.DeleteBehindBack(e.assertOneCorrect(42).ID)
	e.reconcile(42) // gone, created again
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0].Created.IsZero() || got[0].Present || !got[1].Present || !got[1].Created.IsZero() || got[2].Created.IsZero() {
		t.Fatalf("findings %+v, want created, present, created", got)
	}
	// Each finding says when the webhook was last seen before it: never,
	// at its creation, at the reconcile that found it in place.
	if !got[0].Seen.IsZero() || !got[1].Seen.Equal(first) || !got[2].Seen.Equal(second) {
		t.Errorf("seen %v, %v, %v; want zero, %v, %v", got[0].Seen, got[1].Seen, got[2].Seen, first, second)
	}

	// A record written before webhook_seen was kept: its last successful
	// reconcile stands for it.
	last := e.clock.Now().UTC()
	if _, err := e.inspect.Modify(context.Background(), 42, func(c *store.Company) error {
		c.Status.WebhookSeen = nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	mu.Unlock()
	e.reconcile(42)
	mu.Lock()
	if len(got) != 4 || !got[3].Seen.Equal(last) {
		t.Errorf("finding on an older record: %+v, want seen at its last reconcile %v", got[len(got)-1], last)
	}
}

func TestAPICredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.connect(42, "tok-42")
	domain, cred, err := e.m.APICredentials(context.Background(), 42)
	if err != nil || domain != c.Domain || cred.APIToken != "tok-42" {
		t.Errorf("got %q %v %v", domain, cred, err)
	}
	if _, _, err := e.m.APICredentials(context.Background(), 7); !errors.Is(err, ErrUnknownCompany) {
		t.Errorf("unknown company: %v", err)
	}
}
