package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/internal/natstest"
	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
)

const bucket = "PIPEDRIVE_COMPANIES"

func ring(t *testing.T, current byte, previous ...byte) *keys.Ring {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, 32))
	}
	r, err := keys.New(bytes.Repeat([]byte{current}, 32), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newKV is a real in-process NATS with the companies bucket opened under r;
// it returns the store and the raw bucket.
func newKV(t *testing.T, r *keys.Ring) (*Store, jetstream.KeyValue, jetstream.JetStream) {
	t.Helper()
	js := newJS(t)
	s, err := Open(context.Background(), js, bucket, 1, r)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s, kv, js
}

// newJS is a real in-process NATS with JetStream, and nothing in it.
func newJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns := natstest.Run(t)
	_, js := ns.Connect(t)
	return js
}

func company(id int64) *Company {
	return &Company{ID: id, Domain: "acme-" + strconv.FormatInt(id, 10), Auth: AuthAPIToken, WebhookUser: "pdgw-u" + strconv.FormatInt(id, 10),
		WebhookID: 880000 + id, Status: Status{State: StateOK},
		Secrets: Secrets{APIToken: "tok-very-secret-" + strconv.FormatInt(id, 10), WebhookPassword: "Zm9vYmFyLXdlYmhvb2stcGFzc3dvcmQtMzItYnl0ZXM"}}
}

// TestRecordSealedAsAWhole: nothing of a record is in clear, and any change
// to it (a field, a copy onto another company, garbage) makes that record
// unreadable, never misread, while the others read on.
func TestRecordSealedAsAWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, kv, _ := newKV(t, ring(t, 9))
	for _, id := range []int64{41, 42, 43, 44} {
		if err := s.Create(ctx, company(id)); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := kv.Get(ctx, "company.42")
	for _, clear := range []string{"tok-very-secret-42", company(42).Secrets.WebhookPassword, "acme-42", "pdgw-u42", "880042"} {
		if strings.Contains(string(e.Value()), clear) {
			t.Errorf("KV value shows %q in clear: %s", clear, e.Value())
		}
	}
	got, err := s.Get(ctx, 42)
	if err != nil || got.Secrets != company(42).Secrets || got.WebhookID != 880042 || got.Domain != "acme-42" || s.OldKey(got) {
		t.Fatalf("read back %+v, %v", got, err)
	}

	// 41: one bit of the sealed part flipped; 43: 42's record copied onto
	// 43's key; 44: garbage.
	var env envelope
	e41, _ := kv.Get(ctx, "company.41")
	json.Unmarshal(e41.Value(), &env)
	env.Sealed[len(env.Sealed)-20] ^= 1
	flipped, _ := json.Marshal(env)
	kv.Put(ctx, "company.41", flipped)
	kv.Put(ctx, "company.43", e.Value())
	kv.Put(ctx, "company.44", []byte(`{"company_id":44,"webhook_id":1,"sealed":"garbage"}`))

	for _, id := range []int64{41, 43, 44} {
		_, err := s.Get(ctx, id)
		var ue *UnreadableError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUnreadable) || ue.ID != id || ue.UnknownKey {
			t.Errorf("company %d: Get = %v, want unreadable (tampered)", id, err)
		}
	}
	good, bad, err := s.List(ctx)
	if err != nil || len(good) != 1 || good[0].ID != 42 || len(bad) != 3 || bad[0].ID != 41 || bad[1].ID != 43 || bad[2].ID != 44 {
		t.Fatalf("List = %v, %v, %v; want 42 readable and 41, 43, 44 unreadable", good, bad, err)
	}
	// An update of an unreadable record is impossible: Modify stops at Get.
	if _, err := s.Modify(ctx, 44, func(*Company) error { return nil }); !errors.Is(err, ErrUnreadable) {
		t.Errorf("Modify of an unreadable record: %v", err)
	}
}

// TestKeyRotation: records sealed under K1 read with STATE_KEY=K2 and
// STATE_KEY_PREVIOUS=K1, are marked as under an old key, and once written
// again need K1 no more. Without K1 they are unreadable, with the cause
// named as an unknown key.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1, _, js := newKV(t, ring(t, 1))
	if err := k1.Create(ctx, company(42)); err != nil {
		t.Fatal(err)
	}
	k2only, _ := Open(ctx, js, bucket, 1, ring(t, 2))
	_, err := k2only.Get(ctx, 42)
	var ue *UnreadableError
	if !errors.As(err, &ue) || !ue.UnknownKey {
		t.Fatalf("K1 record read with K2 only: %v, want unreadable with an unknown key", err)
	}
	rotating, _ := Open(ctx, js, bucket, 1, ring(t, 2, 1))
	c, err := rotating.Get(ctx, 42)
	if err != nil || c.Secrets != company(42).Secrets || !rotating.OldKey(c) {
		t.Fatalf("K1 record read with K2+K1: %+v, %v (old key %v)", c, err, err == nil && rotating.OldKey(c))
	}
	if err := rotating.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	c, err = k2only.Get(ctx, 42)
	if err != nil || c.Secrets != company(42).Secrets || c.WebhookID != 880042 || k2only.OldKey(c) {
		t.Fatalf("after sealing again, read with K2 only: %+v, %v", c, err)
	}
}

// TestFirstFormatRecord: a record written by the first format (clear fields,
// only the secrets sealed with the raw STATE_KEY) is read, without trusting
// its remembered webhook id, and is marked for sealing again.
func TestFirstFormatRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := ring(t, 9)
	s, kv, _ := newKV(t, r)
	c := company(42)
	plain, _ := json.Marshal(c.Secrets)
	a, _ := keys.NewAEAD(r.Current.Master)
	legacy, _ := json.Marshal(legacyRecord{Company: *c, Sealed: base64.StdEncoding.EncodeToString(keys.Seal(a, plain, []byte("42")))})
	kv.Put(ctx, "company.42", legacy)
	got, err := s.Get(ctx, 42)
	if err != nil || got.Secrets != c.Secrets || got.Domain != c.Domain || got.WebhookID != 0 || !s.OldKey(got) {
		t.Fatalf("first-format record read as %+v, %v", got, err)
	}
	// Bound to the company id: moved to another key it does not open.
	kv.Put(ctx, "company.43", legacy)
	if _, err := s.Get(ctx, 43); !errors.Is(err, ErrUnreadable) {
		t.Errorf("first-format record under another key: %v", err)
	}
}

// TestOpenKeepsOneRevision: a bucket made by an earlier version with five
// revisions per company is opened with one, and its old revisions go.
func TestOpenKeepsOneRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := newJS(t)
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 5, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := old.Put(ctx, "company.42", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(ctx, js, bucket, 1, ring(t, 1)); err != nil {
		t.Fatal(err)
	}
	st, err := old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 || st.Values() != 1 {
		t.Errorf("after Open: history %d, %d values stored; want 1 and 1", st.History(), st.Values())
	}
}
