// Package pipedrive is the gateway's client for the Pipedrive REST API: who
// the caller is (users/me), listing, creating and deleting webhooks, the
// OAuth token endpoint, and the read API that recovers changes Pipedrive
// never delivered (the v2 lists, /v1/recents, leads, notes and users), with
// their documented token costs and the rate-limit state of each answer.
//
// It speaks HTTP and Pipedrive's JSON and nothing else: it knows no NATS, no
// gateway store, no configuration and no backfill policy. Callers decide
// what to ask and how fast; the client tells them what it cost.
//
// Credentials always travel in headers (x-api-token or Authorization: Bearer),
// never in URLs, so they cannot leak through access logs or error strings.
// Every failure is an *APIError whose Kind is one of the Err* sentinels
// (429 with Retry-After or x-ratelimit-reset, a spent daily budget, the
// HTML abuse block behind a 403 …), so callers branch with errors.Is and
// never parse messages.
package pipedrive
