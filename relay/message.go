package relay

import (
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// outMsg is a NATS message reused across publishes: its header map and the
// one-element value slices live here, so a publish builds its headers
// without allocating. nats.go is done with a message once PublishMsg
// returns, which is when it goes back to the pool.
type outMsg struct {
	msg  nats.Msg
	vals [16]string
	n    int
}

var msgPool = sync.Pool{New: func() any {
	o := &outMsg{}
	o.msg.Header = make(nats.Header, len(o.vals))
	return o
}}

func getMsg() *outMsg { return msgPool.Get().(*outMsg) }

func putMsg(o *outMsg) {
	clear(o.msg.Header)
	o.vals = [16]string{}
	o.n = 0
	o.msg.Data, o.msg.Subject, o.msg.Reply = nil, "", ""
	msgPool.Put(o)
}

func (o *outMsg) set(key, value string) {
	if o.n == len(o.vals) {
		o.msg.Header[key] = []string{value}
		return
	}
	o.vals[o.n] = value
	o.msg.Header[key] = o.vals[o.n : o.n+1 : o.n+1]
	o.n++
}

// Get, Set and Keys make outMsg a propagation.TextMapCarrier that writes
// traceparent and tracestate into the pooled header slots.
func (o *outMsg) Get(key string) string { return event.HeaderCarrier(o.msg.Header).Get(key) }

func (o *outMsg) Set(key, value string) { o.set(key, value) }

func (o *outMsg) Keys() []string { return event.HeaderCarrier(o.msg.Header).Keys() }

// fill sets the SPEC §4 headers of ev. ce-source and ce-time share one
// string allocation.
func (o *outMsg) fill(ev *event.Event, ceType string) {
	var buf [320]byte
	b := buf[:0]
	if ev.Host != "" {
		b = append(append(b, "https://"...), ev.Host...)
	} else {
		b = append(append(b, "pipedrive://company/"...), ev.CompanyID...)
	}
	src := len(b)
	if !ev.Time.IsZero() {
		b = ev.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	s := string(b)
	o.set("ce-specversion", "1.0")
	o.set("ce-id", ev.ID)
	o.set("ce-type", ceType)
	o.set("ce-source", s[:src])
	if ev.EntityID != "" {
		o.set("ce-subject", ev.EntityID)
	}
	if src < len(s) {
		o.set("ce-time", s[src:])
	}
	o.set("Content-Type", "application/json")
	// NATS header names are case-sensitive: CloudEvents SDKs reading the
	// NATS binding (the Go SDK's JetStream one among them) look for
	// content-type, and report datacontenttype empty without it.
	o.set("content-type", "application/json")
	o.set(event.HeaderCompanyID, ev.CompanyID)
	if ev.WebhookID != "" {
		o.set(event.HeaderWebhookID, ev.WebhookID)
	}
	// A gap status event is the gateway's own, not a Pipedrive delivery:
	// it has no webhook version and no attempt.
	if ev.Version != "" {
		o.set(event.HeaderWebhookVersion, ev.Version)
		o.set(event.HeaderAttempt, strconv.Itoa(ev.Attempt)) // no allocation below 100
	}
	if ev.Backfill != "" {
		o.set(event.HeaderBackfill, ev.Backfill)
	}
}

// eventNames are the strings derived from (action, object), made once.
type eventNames struct {
	subject, spanName, ceType string
}

type namesKey struct{ action, object string }

// nameCache holds eventNames per (action, object); bounded, because
// objects are whatever Pipedrive (or a caller with valid credentials)
// sends.
type nameCache struct {
	mu sync.RWMutex
	m  map[namesKey]*eventNames
}

const maxNames = 1024

func (c *nameCache) get(prefix string, ev *event.Event) *eventNames {
	k := namesKey{ev.Action, ev.Object}
	c.mu.RLock()
	n, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return n
	}
	subject := prefix + "." + ev.Action + "." + ev.Object
	n = &eventNames{subject: subject, spanName: "publish " + subject, ceType: "com.pipedrive." + ev.Object + "." + ev.Action}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[namesKey]*eventNames{}
	}
	if len(c.m) < maxNames {
		c.m[k] = n
	}
	c.mu.Unlock()
	return n
}
