package gateway_test

import (
	"encoding/json"
	"testing"
)

type obj = map[string]any

// v2Body is a Pipedrive v2 delivery shaped like the migration guide's
// examples; edit changes its meta before encoding.
func v2Body(t testing.TB, action, entity string, edit func(meta obj)) []byte {
	t.Helper()
	meta := obj{
		"action": action, "entity": entity, "entity_id": "5123", "company_id": company,
		"user_id": "20517", "id": "c41d7e22-9b0a-4f3c-8e61-" + action + "-" + entity,
		"correlation_id": "0e9a8b7c-6d5e-4f3a-9b2c-1d0e9f8a7b6c", "timestamp": "2025-06-02T10:02:45.088Z",
		"type": "general", "version": "2.0", "webhook_id": "880021", "webhook_owner_id": "20441",
		"change_source": "app", "is_bulk_edit": false, "attempt": 1, "host": "acme-sales.pipedrive.com",
	}
	if edit != nil {
		edit(meta)
	}
	var data, previous any = obj{"id": 5123, "title": "Acme Ltd – annual licence"}, nil
	switch action {
	case "change":
		previous = obj{"title": "Acme"}
	case "delete":
		data, previous = nil, obj{"id": 5123, "title": "Acme"}
	}
	return mustJSON(t, obj{"meta": meta, "data": data, "previous": previous})
}

// v2User is the user entity quirk: meta.id is the user id and the timestamp
// is Unix seconds.
func v2User(t testing.TB, ts int64) []byte {
	return v2Body(t, "change", "user", func(m obj) {
		m["id"], m["entity_id"], m["timestamp"] = "20517", "20517", ts
	})
}

// v1Body is a legacy v1 delivery.
func v1Body(t testing.TB, action, object string, retry int, edit func(meta obj)) []byte {
	t.Helper()
	meta := obj{
		"v": 1, "action": action, "object": object, "id": 5123, "company_id": 9912345,
		"user_id": 20517, "host": "acme-sales.pipedrive.com", "timestamp": 1748859007,
		"timestamp_micro": 1748859007512000, "change_source": "app", "webhook_id": "880020",
	}
	if edit != nil {
		edit(meta)
	}
	return mustJSON(t, obj{
		"v": 1, "event": action + "." + object, "retry": retry, "meta": meta,
		"current": obj{"id": 5123}, "previous": nil,
		"matches_filters": obj{"current": []any{}},
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
