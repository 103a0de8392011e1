package store

import (
	"strconv"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// Auth kinds of a company.
const (
	AuthAPIToken = "api_token"
	AuthOAuth    = "oauth"
)

// States of a company's webhook.
const (
	StateOK      = "ok"
	StatePending = "pending"
	StateError   = "error"
)

// Company is one connected Pipedrive company as kept in the store.
type Company struct {
	ID     int64  `json:"company_id"`
	Domain string `json:"domain"`
	Auth   string `json:"auth"`
	// WebhookUser is the generated Basic user of its webhook. Not a
	// secret on its own; the password is sealed in Secrets.
	WebhookUser string    `json:"webhook_user"`
	WebhookID   int64     `json:"webhook_id,omitempty"`
	ConnectedAt time.Time `json:"connected_at"`
	Status      Status    `json:"status"`

	// APITokenHash is the keyed hash of Secrets.APIToken (see
	// Store.TokenHash), set on every write; never the token itself.
	APITokenHash string `json:"api_token_hash,omitempty"`

	Secrets Secrets `json:"-"`
	// revision is the KV revision this record was read at, for
	// compare-and-set updates.
	revision uint64
	// keyID names the key the record was read under (see Store.OldKey).
	keyID string
}

// Secrets are sealed with the rest of the record; never shown.
type Secrets struct {
	APIToken        string    `json:"api_token,omitempty"`
	AccessToken     string    `json:"access_token,omitempty"`
	RefreshToken    string    `json:"refresh_token,omitempty"`
	AccessExpiresAt time.Time `json:"access_expires_at,omitzero"`
	WebhookPassword string    `json:"webhook_password"`
}

// Status is the outcome of the last reconcile and what Pipedrive reports
// about the webhook.
type Status struct {
	State            string     `json:"state"`
	LastReconcile    *time.Time `json:"last_reconcile,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
	LastHTTPStatus   *int       `json:"last_http_status,omitempty"`
	LastDeliveryTime *time.Time `json:"last_delivery_time,omitempty"`
	// WebhookSeen is when a reconcile last found our webhook in place (or
	// created it): the start of the events lost if it goes missing.
	WebhookSeen *time.Time `json:"webhook_seen,omitempty"`
}

// Key is the company's id as used in URLs.
func (c *Company) Key() string { return strconv.FormatInt(c.ID, 10) }

// Credentials are the API credentials of the company.
func (c *Company) Credentials() pipedrive.Credentials {
	if c.Auth == AuthOAuth {
		return pipedrive.Credentials{AccessToken: c.Secrets.AccessToken}
	}
	return pipedrive.Credentials{APIToken: c.Secrets.APIToken}
}
