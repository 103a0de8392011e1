package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The load is a fixed, realistic mix of Pipedrive v2 webhook bodies: every
// (action, entity) pair over seven entities, bodies of 1–3 KB shaped like the
// examples of the migration guide (pipedrive.md §1.4). Each request gets a
// unique meta.id: the per-run prefix plus 12 hex digits of its sequence
// number, written into a fixed-width slot of a pre-rendered template, so a
// request costs one copy and no JSON encoding.

// idLen is the length of a meta.id: "rrrrrrrr-0000-4000-8000-" + 12 hex.
const (
	idPrefixLen = 24
	idLen       = idPrefixLen + 12
)

// idPrefix is the per-run part of every meta.id: 8 hex digits of run id in
// a UUID-shaped prefix.
func idPrefix(runID string) string { return runID + "-0000-4000-8000-" }

// template is one pre-rendered body with the offset of its meta.id digits.
type template struct {
	action, entity string
	body           []byte
	idOff          int // offset of the 12 sequence digits
}

// render writes the body for sequence number seq into dst (reusing its
// capacity) and returns it.
func (t *template) render(dst []byte, seq uint64) []byte {
	dst = append(dst[:0], t.body...)
	putHex12(dst[t.idOff:t.idOff+12], seq)
	return dst
}

const hexDigits = "0123456789abcdef"

func putHex12(b []byte, v uint64) {
	for i := 11; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// parseHex12 reads back what putHex12 wrote.
func parseHex12(s string) (uint64, bool) {
	if len(s) != 12 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}

// entity is the sample state of one Pipedrive object.
type entity struct {
	name     string
	entityID string
	weight   int    // share of the traffic
	full     string // data on create/change, previous on delete
	changed  string // previous on change: old values of the changed fields
}

// Weights: changes dominate real traffic, then creations, few deletions;
// deals, activities and persons are the busiest objects.
var actionWeights = []struct {
	name   string
	weight int
}{{"change", 6}, {"create", 3}, {"delete", 1}}

var entities = []entity{
	{name: "deal", entityID: "5123", weight: 5, full: `{
		"id": 5123, "title": "Acme Ltd – annual licence", "value": 12000, "currency": "EUR",
		"status": "open", "pipeline_id": 1, "stage_id": 4, "person_id": 778, "org_id": 312,
		"owner_id": 20441, "creator_user_id": 20441, "label_ids": [3, 7], "origin": "API",
		"origin_id": null, "channel": null, "channel_id": null, "probability": 60,
		"expected_close_date": "2025-07-31", "visible_to": "3", "is_deleted": false,
		"add_time": "2025-06-02T09:14:07Z", "update_time": "2025-06-02T10:02:45Z",
		"stage_change_time": "2025-06-02T10:02:45Z", "close_time": null, "won_time": null,
		"first_won_time": null, "lost_time": null, "lost_reason": null, "acv": null, "arr": null, "mrr": null,
		"custom_fields": {
			"a1f3c9e07b2d4e6f8a9b0c1d2e3f4a5b6c7d8e9f": {"type": "varchar", "value": "Inbound webinar"},
			"b2e4d6f8a0c2e4f6a8b0c2d4e6f8a0b2c4d6e8f0": {"type": "monetary", "value": 4500, "currency": "EUR"},
			"c3d5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1": {"type": "enum", "id": 41},
			"d4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2": {"type": "date", "value": "2025-07-15"},
			"e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3": {"type": "set", "values": [{"id": 12}, {"id": 14}]},
			"f6c8e0a2b4d6f8c0e2a4b6d8f0c2e4a6b8d0f2c4": {"type": "daterange", "from": "2025-07-01", "until": "2026-06-30"},
			"a7d9f1b3c5e7a9d1f3b5c7e9a1d3f5b7c9e1a3d5": {"type": "timerange", "from": "09:00:00", "until": "17:00:00", "timezone_id": 82},
			"b8e0a2c4d6f8b0e2a4c6d8f0b2e4a6c8d0f2b4e6": {"type": "address", "value": "Narva mnt 5, 10117 Tallinn, Estonia",
				"subpremise": null, "street_number": "5", "route": "Narva mnt", "sublocality": "Kesklinn", "locality": "Tallinn",
				"admin_area_level_1": "Harju maakond", "admin_area_level_2": null, "country": "Estonia", "postal_code": "10117",
				"formatted_address": "Narva mnt 5, 10117 Tallinn, Estonia"},
			"c9f1b3d5e7a9c1f3b5d7e9a1c3f5b7d9e1a3c5f7": {"type": "people", "id": 778},
			"d0a2c4e6f8b0d2a4c6e8f0b2d4a6c8e0f2b4d6a8": {"type": "org", "id": 312},
			"e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9": {"type": "text", "value": "Renewal of the 2024 contract; procurement asked for a 3-year option and a DPA review before the end of the quarter."}
		}}`,
		changed: `{"stage_id": 3, "probability": 40, "stage_change_time": "2025-05-30T08:00:11Z",
		"update_time": "2025-05-30T08:00:11Z", "custom_fields": {"c3d5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1": {"type": "enum", "id": 40}}}`},
	{name: "person", entityID: "778", weight: 3, full: `{
		"id": 778, "name": "Maria Tamm", "first_name": "Maria", "last_name": "Tamm", "org_id": 312,
		"owner_id": 20517, "label_ids": [5], "picture_id": null, "is_deleted": false,
		"emails": [{"label": "work", "value": "maria@acme.example", "primary": true},
			{"label": "home", "value": "maria.tamm@mail.example", "primary": false}],
		"phones": [{"label": "mobile", "value": "+372 5555 0101", "primary": true}],
		"im": [], "postal_address": {"value": "Narva mnt 5, 10117 Tallinn, Estonia", "country": "Estonia", "locality": "Tallinn"},
		"birthday": null, "job_title": "Head of Procurement", "marketing_status": "subscribed",
		"visible_to": "3", "add_time": "2025-05-20T08:00:11Z", "update_time": "2025-06-02T10:02:45Z",
		"custom_fields": {
			"f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4": {"type": "varchar", "value": "Met at SaaStock"},
			"a7b9d1f3c5e7a9b1d3f5c7e9a1b3d5f7c9e1a3b5": {"type": "user", "id": 20441},
			"b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6": {"type": "phone", "value": "+372 5555 0102"},
			"c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7": {"type": "enum", "id": 17},
			"d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8": {"type": "date", "value": "1986-04-12"}
		}}`,
		changed: `{"last_name": "Kask", "name": "Maria Kask", "update_time": "2025-05-20T08:00:11Z"}`},
	{name: "organization", entityID: "312", weight: 2, full: `{
		"id": 312, "name": "Acme Ltd", "owner_id": 20441, "label_ids": [2], "is_deleted": false,
		"address": {"value": "Narva mnt 5, 10117 Tallinn, Estonia", "street_number": "5",
			"route": "Narva mnt", "sublocality": "Kesklinn", "locality": "Tallinn",
			"admin_area_level_1": "Harju maakond", "admin_area_level_2": null, "country": "Estonia",
			"postal_code": "10117", "formatted_address": "Narva mnt 5, 10117 Tallinn, Estonia"},
		"visible_to": "3", "add_time": "2025-01-14T12:30:00Z", "update_time": "2025-06-02T10:02:45Z",
		"custom_fields": {
			"b8c0e2a4d6f8b0c2e4a6d8f0b2c4e6a8d0f2b4c6": {"type": "double", "value": 250},
			"c9d1f3b5e7a9c1d3f5b7e9a1c3d5f7b9e1a3c5d7": {"type": "varchar", "value": "https://acme.example"},
			"d0e2a4c6f8b0d2e4a6c8f0b2d4e6a8c0f2b4d6e8": {"type": "enum", "id": 8}
		}}`,
		changed: `{"address": {"value": "Pärnu mnt 10, 10148 Tallinn, Estonia", "route": "Pärnu mnt", "street_number": "10", "postal_code": "10148"}, "update_time": "2025-05-02T11:00:00Z"}`},
	{name: "activity", entityID: "9812", weight: 4, full: `{
		"id": 9812, "subject": "Follow-up call about the annual licence", "type": "call",
		"owner_id": 20441, "creator_user_id": 20441, "is_deleted": false, "done": false,
		"due_date": "2025-06-05", "due_time": "14:30", "duration": "00:30", "busy": true,
		"deal_id": 5123, "lead_id": null, "person_id": 778, "org_id": 312, "project_id": null,
		"location": null, "public_description": null, "priority": null,
		"note": "<p>Ask about the procurement timeline and the second site.</p>",
		"participants": [{"person_id": 778, "primary": true}],
		"attendees": [{"email": "maria@acme.example", "name": "Maria Tamm", "status": "accepted", "is_organizer": false, "person_id": 778, "user_id": null}],
		"add_time": "2025-06-02T09:20:00Z", "update_time": "2025-06-02T10:02:45Z", "marked_as_done_time": null
		}`,
		changed: `{"due_date": "2025-06-04", "due_time": "10:00", "update_time": "2025-06-02T09:20:00Z"}`},
	{name: "note", entityID: "4471", weight: 2, full: `{
		"id": 4471, "user_id": 20517, "deal_id": 5123, "person_id": 778, "org_id": 312, "lead_id": null,
		"project_id": null, "active_flag": true, "pinned_to_deal_flag": true, "pinned_to_person_flag": false,
		"pinned_to_organization_flag": false, "pinned_to_lead_flag": false,
		"content": "<p>Call summary: Maria confirmed the budget for the annual licence (12k EUR). Procurement needs the DPA and a security questionnaire before signing. Second site in Tartu may follow in Q4; she will introduce us to their IT lead next week.</p><ul><li>Send DPA</li><li>Send security questionnaire</li><li>Book demo for Tartu team</li></ul>",
		"add_time": "2025-06-02T10:05:00Z", "update_time": "2025-06-02T10:05:00Z"
		}`,
		changed: `{"content": "<p>Call summary: Maria confirmed the budget.</p>", "pinned_to_deal_flag": false, "update_time": "2025-06-02T10:01:00Z"}`},
	{name: "lead", entityID: "adf21080-0e10-11eb-879b-05d71fb426ec", weight: 2, full: `{
		"id": "adf21080-0e10-11eb-879b-05d71fb426ec", "title": "Globex – CRM integration",
		"owner_id": 20441, "creator_id": 20441, "label_ids": ["f08b42a0-4e75-11ea-9643-03698ef1cfd6"],
		"person_id": 779, "organization_id": 313, "source_name": "Web forms", "origin": "WebForms",
		"origin_id": null, "channel": 4, "channel_id": null, "is_archived": false, "was_seen": true,
		"value": {"amount": 8000, "currency": "USD"}, "expected_close_date": "2025-09-30",
		"next_activity_id": 9813, "visible_to": "3",
		"add_time": "2025-06-01T16:45:12Z", "update_time": "2025-06-02T10:02:45Z",
		"custom_fields": {
			"e1f3b5d7a9c1e3f5b7d9a1c3e5f7b9d1a3c5e7f9": {"type": "varchar", "value": "Wants HubSpot migration"},
			"f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0": {"type": "enum", "id": 3}
		}}`,
		changed: `{"was_seen": false, "value": {"amount": 5000, "currency": "USD"}, "update_time": "2025-06-01T16:45:12Z"}`},
	{name: "product", entityID: "61", weight: 1, full: `{
		"id": 61, "name": "Annual licence – Business", "code": "LIC-BUS-12", "unit": "seat",
		"tax": 22, "category": 2, "is_deleted": false, "is_linkable": true, "visible_to": "3",
		"owner_id": 20441, "billing_frequency": "annually", "billing_frequency_cycles": null,
		"description": "Business tier, billed yearly per seat. Includes SSO, audit log and priority support.",
		"prices": [{"price": 480, "currency": "EUR", "cost": 0, "direct_cost": null, "notes": "list price"},
			{"price": 520, "currency": "USD", "cost": 0, "direct_cost": null, "notes": "list price"}],
		"add_time": "2024-11-04T08:00:00Z", "update_time": "2025-06-02T10:02:45Z",
		"custom_fields": {
			"a3b5d7f9c1e3a5b7d9f1c3e5a7b9d1f3c5e7a9b1": {"type": "varchar", "value": "SKU-88120"}
		}}`,
		changed: `{"prices": [{"price": 450, "currency": "EUR", "cost": 0, "direct_cost": null, "notes": "list price"}], "update_time": "2025-01-10T08:00:00Z"}`},
}

// metaTemplate is the v2 meta object; %s are action, entity, entity id,
// company id, event id, attempt-free constants follow.
const metaTemplate = `{"action":%q,"entity":%q,"entity_id":%q,"company_id":%q,"user_id":"20517",` +
	`"id":%q,"correlation_id":"0e9a8b7c-6d5e-4f3a-9b2c-1d0e9f8a7b6c","timestamp":"2025-06-02T10:02:45.088Z",` +
	`"type":"general","version":"2.0","webhook_id":"880021","webhook_owner_id":"20441",` +
	`"change_source":"app","is_bulk_edit":false,"attempt":1,"host":"acme-sales.pipedrive.com",` +
	`"permitted_user_ids":["20441","20517"]}`

// buildTemplates renders every (action, entity) body for companyID and
// returns them with a weighted, deterministically shuffled schedule of
// template indexes: request seq uses templates[mix[seq%len(mix)]].
func buildTemplates(companyID, runID string) (tpls []template, mix []int, err error) {
	placeholder := idPrefix(runID) + "000000000000"
	for _, a := range actionWeights {
		for _, e := range entities {
			full, err := compact(e.full)
			if err != nil {
				return nil, nil, fmt.Errorf("entity %s: %w", e.name, err)
			}
			changed, err := compact(e.changed)
			if err != nil {
				return nil, nil, fmt.Errorf("entity %s changed: %w", e.name, err)
			}
			var data, prev string
			switch a.name {
			case "create":
				data, prev = full, "null"
			case "change":
				data, prev = full, changed
			case "delete":
				data, prev = "null", full
			}
			meta := fmt.Sprintf(metaTemplate, a.name, e.name, e.entityID, companyID, placeholder)
			body := []byte(`{"meta":` + meta + `,"data":` + data + `,"previous":` + prev + `}`)
			off := bytes.Index(body, []byte(placeholder))
			if off < 0 || !json.Valid(body) {
				return nil, nil, fmt.Errorf("bad template for %s.%s", a.name, e.name)
			}
			idx := len(tpls)
			tpls = append(tpls, template{action: a.name, entity: e.name, body: body, idOff: off + idPrefixLen})
			for range a.weight * e.weight {
				mix = append(mix, idx)
			}
		}
	}
	// A fixed shuffle (LCG) so consecutive requests vary in kind and size
	// but every run sends the same sequence.
	s := uint64(0x9e3779b97f4a7c15)
	for i := len(mix) - 1; i > 0; i-- {
		s = s*6364136223846793005 + 1442695040888963407
		j := int((s >> 33) % uint64(i+1))
		mix[i], mix[j] = mix[j], mix[i]
	}
	return tpls, mix, nil
}

func compact(s string) (string, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}
