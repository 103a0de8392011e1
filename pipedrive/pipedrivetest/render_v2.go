package pipedrivetest

import "time"

// The v2 shapes follow the list responses of Pipedrive's v2 OpenAPI document
// (v2.yaml: GET /deals, /deals/archived, /persons, /organizations,
// /activities, /products, /pipelines, /stages). Defaults are plausible
// values; Fields override them; the fake's own fields override both.

// v2Time is how v2 writes times (RFC 3339, whole seconds, UTC).
const v2Time = "2006-01-02T15:04:05Z"

func v2TimeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(v2Time)
}

// renderV2 returns o in the v2 list shape.
func renderV2(o *Object, co *company) map[string]any {
	uid := co.UserID
	var m map[string]any
	switch o.Kind {
	case kindDeal:
		m = map[string]any{
			"title": "Deal " + itoa(o.ID), "creator_user_id": uid, "owner_id": uid, "value": 0,
			"person_id": nil, "org_id": nil, "stage_id": 1, "pipeline_id": 1, "currency": "EUR",
			"stage_change_time": nil, "status": "open", "probability": nil, "lost_reason": nil,
			"visible_to": 3, "close_time": nil, "won_time": nil, "lost_time": nil,
			"expected_close_date": nil, "label_ids": []int{}, "origin": "API", "origin_id": nil,
			"channel": nil, "channel_id": nil, "custom_fields": map[string]any{},
		}
	case kindPerson:
		m = map[string]any{
			"name": "Person " + itoa(o.ID), "first_name": "Person", "last_name": itoa(o.ID),
			"owner_id": uid, "org_id": nil, "emails": []any{}, "phones": []any{}, "visible_to": 3,
			"label_ids": []int{}, "picture_id": nil, "custom_fields": map[string]any{},
		}
	case kindOrganization:
		m = map[string]any{
			"name": "Organization " + itoa(o.ID), "owner_id": uid, "visible_to": 3, "address": nil,
			"label_ids": []int{}, "website": nil, "linkedin": nil, "industry": nil,
			"annual_revenue": nil, "employee_count": nil, "custom_fields": map[string]any{},
		}
	case kindActivity:
		m = map[string]any{
			"subject": "Activity " + itoa(o.ID), "type": "call", "owner_id": uid, "creator_user_id": uid,
			"deal_id": nil, "lead_id": nil, "person_id": nil, "org_id": nil, "project_id": nil,
			"due_date": nil, "due_time": nil, "duration": nil, "busy": false, "done": false,
			"marked_as_done_time": nil, "location": nil, "participants": []any{}, "attendees": []any{},
			"public_description": "", "priority": nil, "note": "",
		}
	case kindProduct:
		m = map[string]any{
			"name": "Product " + itoa(o.ID), "code": "", "description": "", "unit": "", "tax": 0,
			"category": nil, "is_linkable": true, "visible_to": 3, "owner_id": uid,
			"billing_frequency": "one-time", "billing_frequency_cycles": nil, "prices": []any{},
			"custom_fields": map[string]any{},
		}
	case kindPipeline:
		m = map[string]any{
			"name": "Pipeline " + itoa(o.ID), "order_nr": o.ID, "is_deal_probability_enabled": false,
			"is_selected": false,
		}
	case kindStage:
		m = map[string]any{
			"name": "Stage " + itoa(o.ID), "order_nr": o.ID, "deal_probability": 100, "pipeline_id": 1,
			"is_deal_rot_enabled": false, "days_to_rotten": nil,
		}
	default:
		m = map[string]any{}
	}
	for k, v := range o.Fields {
		m[k] = v
	}
	m["id"] = o.ID
	m["add_time"] = v2TimeOrNil(o.AddTime)
	m["update_time"] = v2TimeOrNil(o.UpdateTime)
	m["is_deleted"] = o.Deleted
	if o.Kind == kindDeal {
		m["is_archived"] = o.Archived
		m["archive_time"] = v2TimeOrNil(o.ArchiveTime)
		if o.Deleted {
			m["status"] = "deleted"
		}
	}
	return m
}

// dealStatus is a deal's status as the status filter sees it.
func dealStatus(o *Object) string {
	if o.Deleted {
		return "deleted"
	}
	if s, ok := o.Fields["status"].(string); ok && s != "" {
		return s
	}
	return "open"
}
