package keys

import (
	"bytes"
	"testing"
)

// TestDerivation: each purpose has its own key, the key id names the
// STATE_KEY without being any of its keys, and previous keys are kept in
// order, the current one not twice.
func TestDerivation(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	r, err := New(k2, k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Previous) != 1 || !bytes.Equal(r.Previous[0].Master, k1) {
		t.Fatalf("previous = %d sets, want K1 only", len(r.Previous))
	}
	again, _ := New(k2)
	if r.Current.ID != again.Current.ID || r.Current.ID == r.Previous[0].ID || len(r.Current.ID) != 16 {
		t.Errorf("key ids %q (again %q), previous %q", r.Current.ID, again.Current.ID, r.Previous[0].ID)
	}
	if s, ok := r.Find(r.Previous[0].ID); !ok || s != r.Previous[0] {
		t.Error("Find misses the previous key")
	}
	cur := r.Current
	mac := cur.CommandMAC([]byte("a"), []byte("b"))
	for name, other := range map[string][]byte{
		"another split":   cur.CommandMAC([]byte("ab"), nil),
		"another key":     r.Previous[0].CommandMAC([]byte("a"), []byte("b")),
		"the lookup key":  []byte(cur.Lookup("a", "b")),
		"the raw key mac": mac[:0],
	} {
		if bytes.Equal(mac, other) {
			t.Errorf("command MAC equals %s", name)
		}
	}
	sealed := Seal(cur.Record(), []byte("secret"), []byte("company.1"))
	if _, err := Open(cur.Install(), sealed, []byte("company.1")); err == nil {
		t.Error("a record opens with the install key")
	}
	if _, err := Open(cur.Record(), sealed, []byte("company.2")); err == nil {
		t.Error("a record opens bound to another key")
	}
	if plain, err := Open(cur.Record(), sealed, []byte("company.1")); err != nil || string(plain) != "secret" {
		t.Errorf("Open = %q, %v", plain, err)
	}
	if _, err := New(k1[:16]); err == nil {
		t.Error("a 16-byte STATE_KEY was accepted")
	}
}
