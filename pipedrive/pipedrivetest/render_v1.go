package pipedrivetest

import (
	"strings"
	"time"
)

// The v1 shapes follow Pipedrive's v1 OpenAPI document (v1.yaml): the
// GetRecentsResponse item schemas (deal, person, organization, activity,
// product, pipeline, stage, note, user), GET /notes, GET /leads and GET
// /users. v1 objects are flat, with denormalised names and times written
// "YYYY-MM-DD HH:MM:SS" in UTC (leads: ISO 8601 with milliseconds).

const (
	v1Time   = "2006-01-02 15:04:05"
	leadTime = "2006-01-02T15:04:05.000Z"
)

func v1TimeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(v1Time)
}

// v1Renames maps the v2 names tests use in Fields to their v1 names.
var v1Renames = map[string]map[string]string{
	kindDeal:     {"owner_id": "user_id"},
	kindActivity: {"owner_id": "user_id", "busy": "busy_flag"},
	kindPerson:   {"emails": "email", "phones": "phone"},
	kindProduct:  {"is_linkable": "selectable"},
	kindPipeline: {"is_deal_probability_enabled": "deal_probability", "is_selected": "selected"},
	kindStage:    {"is_deal_rot_enabled": "rotten_flag", "days_to_rotten": "rotten_days"},
}

// renderV1 returns o in its v1 shape.
func renderV1(o *Object, co *company) map[string]any {
	uid, owner := co.UserID, "User "+itoa(co.UserID)
	id := itoa(o.ID)
	var m map[string]any
	switch o.Kind {
	case kindDeal:
		m = map[string]any{
			"creator_user_id": uid, "user_id": uid, "person_id": nil, "org_id": nil, "stage_id": 1,
			"title": "Deal " + id, "value": 0, "currency": "EUR", "stage_change_time": nil,
			"status": "open", "probability": nil, "lost_reason": nil, "visible_to": "3",
			"close_time": nil, "pipeline_id": 1, "won_time": nil, "lost_time": nil,
			"expected_close_date": nil, "label": nil, "person_name": nil, "org_name": nil,
			"owner_name": owner, "origin": "API", "origin_id": nil, "channel": nil, "channel_id": nil,
		}
	case kindPerson:
		m = map[string]any{
			"company_id": co.ID, "owner_id": uid, "org_id": nil, "name": "Person " + id,
			"first_name": "Person", "last_name": id, "phone": []any{}, "email": []any{},
			"first_char": "p", "visible_to": "3", "picture_id": nil, "label": nil, "label_ids": []int{},
			"org_name": nil, "owner_name": owner, "cc_email": "",
		}
	case kindOrganization:
		m = map[string]any{
			"company_id": co.ID, "name": "Organization " + id, "first_char": "o", "visible_to": "3",
			"owner_id":   map[string]any{"id": uid, "name": owner, "email": "", "has_pic": 0, "pic_hash": nil, "active_flag": true, "value": uid},
			"picture_id": nil, "country_code": nil, "label": nil, "label_ids": []int{},
			"owner_name": owner, "cc_email": "", "address": nil,
		}
	case kindActivity:
		m = map[string]any{
			"company_id": co.ID, "user_id": uid, "done": false, "type": "call", "due_date": nil,
			"due_time": "", "duration": "", "busy_flag": false, "marked_as_done_time": "",
			"subject": "Activity " + id, "public_description": "", "location": nil, "org_id": nil,
			"person_id": nil, "deal_id": nil, "lead_id": nil, "project_id": nil, "update_user_id": uid,
			"note": "", "created_by_user_id": uid, "assigned_to_user_id": uid, "org_name": nil,
			"person_name": nil, "deal_title": nil, "owner_name": owner,
		}
	case kindProduct:
		m = map[string]any{
			"name": "Product " + id, "code": "", "description": "", "unit": "", "tax": 0, "category": nil,
			"selectable": true, "first_char": "p", "visible_to": 3, "owner_id": uid, "files_count": 0,
			"prices": []any{},
		}
	case kindPipeline:
		m = map[string]any{
			"name": "Pipeline " + id, "url_title": "pipeline-" + id, "order_nr": o.ID,
			"deal_probability": false, "selected": false,
		}
	case kindStage:
		m = map[string]any{
			"name": "Stage " + id, "order_nr": o.ID, "deal_probability": 100, "pipeline_id": 1,
			"rotten_flag": false, "rotten_days": nil,
		}
	case kindNote:
		m = map[string]any{
			"content": "Note " + id, "deal_id": nil, "lead_id": nil, "org_id": nil, "person_id": nil,
			"project_id": nil, "last_update_user_id": uid, "pinned_to_deal_flag": false,
			"pinned_to_organization_flag": false, "pinned_to_person_flag": false,
			"pinned_to_project_flag": false, "user_id": uid,
			"user": map[string]any{"email": "user" + itoa(uid) + "@" + co.Domain + ".example", "icon_url": nil, "is_you": true, "name": owner},
		}
	case kindUser:
		m = userShape(o.ID, co)
	case kindLead:
		m = map[string]any{
			"title": "Lead " + id, "owner_id": uid, "creator_id": uid, "label_ids": []string{},
			"person_id": nil, "organization_id": nil, "source_name": "API", "origin": "API",
			"origin_id": nil, "channel": nil, "channel_id": nil, "was_seen": false, "value": nil,
			"expected_close_date": nil, "next_activity_id": nil, "visible_to": "3",
			"cc_email": co.Domain + "+" + id + "@pipedrivemail.example",
		}
	default:
		m = map[string]any{}
	}
	renames := v1Renames[o.Kind]
	for k, v := range o.Fields {
		if r, ok := renames[k]; ok {
			k = r
		}
		m[k] = v
	}
	m["id"] = o.ID
	add, upd := v1TimeOrNil(o.AddTime), v1TimeOrNil(o.UpdateTime)
	switch o.Kind {
	case kindUser:
		m["created"], m["modified"] = add, upd
		m["is_deleted"] = o.Deleted
		if o.Deleted {
			m["active_flag"] = false
		}
		return m
	case kindLead:
		m["id"] = o.UUID
		m["add_time"] = o.AddTime.UTC().Format(leadTime)
		m["update_time"] = o.UpdateTime.UTC().Format(leadTime)
		m["is_archived"] = o.Archived
		return m
	}
	m["add_time"], m["update_time"] = add, upd
	switch o.Kind {
	case kindDeal:
		m["active"], m["deleted"], m["is_archived"] = !o.Deleted, o.Deleted, o.Archived
		m["status"] = dealStatus(o)
	case kindPipeline:
		m["active"] = !o.Deleted
	default:
		m["active_flag"] = !o.Deleted
	}
	return m
}

// userShape is a v1 user (BaseUser) before the fake's own fields.
func userShape(id int64, co *company) map[string]any {
	return map[string]any{
		"name": "User " + itoa(id), "default_currency": "EUR", "locale": "en_US", "lang": 1,
		"email": "user" + itoa(id) + "@" + strings.ToLower(co.Domain) + ".example", "phone": nil,
		"activated": true, "last_login": nil, "has_created_company": id == co.UserID,
		"access":      []any{map[string]any{"app": "sales", "admin": id == co.UserID}},
		"active_flag": true, "timezone_name": "Europe/Tallinn", "timezone_offset": "+02:00",
		"role_id": 1, "icon_url": nil, "is_you": id == co.UserID, "is_deleted": false,
	}
}
