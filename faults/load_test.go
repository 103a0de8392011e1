package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// eventBody is a v2 "change deal" delivery for company with a unique meta.id.
func eventBody(company int64, id string) []byte {
	return fmt.Appendf(nil, `{"meta":{"action":"change","entity":"deal","entity_id":"5123","company_id":"%d",`+
		`"user_id":"20517","id":%q,"timestamp":"2025-06-02T10:02:45.088Z","type":"general","version":"2.0",`+
		`"webhook_id":"880021","attempt":1,"host":"acme.pipedrive.com"},`+
		`"data":{"id":5123,"title":"fault test","value":12000,"currency":"EUR"},"previous":{"stage_id":3}}`, company, id)
}

// result is one request of the load.
type result struct {
	id      string
	start   time.Time
	latency time.Duration
	status  int // 0 = transport error
}

// loader posts events with unique ids from several workers and records
// every answer; the ids that got a 200 are the ones that must be stored.
type loader struct {
	url        string // ingress base URL
	company    int64
	user, pass string
	prefix     string
	pace       time.Duration // pause between a worker's requests; 0 = none

	client *http.Client
	sent   atomic.Int64
	mu     sync.Mutex
	res    []result

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLoader(url string, company int64, user, pass, prefix string) *loader {
	return &loader{
		url: url, company: company, user: user, pass: pass, prefix: prefix,
		client: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		},
	}
}

// start runs workers until stop.
func (l *loader) start(workers int) *loader {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r := l.post(fmt.Sprintf("%s-%d-%d", l.prefix, w, i))
				pause := l.pace
				if r.status != http.StatusOK {
					// Do not spin on 503s or a closed port.
					pause = max(pause, 10*time.Millisecond)
				}
				if pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			}
		}()
	}
	return l
}

// stop ends the load and waits for requests in flight.
func (l *loader) stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// post sends one event and records the answer.
func (l *loader) post(id string) result {
	l.sent.Add(1)
	r := result{id: id, start: time.Now()}
	url := fmt.Sprintf("%s/webhooks/pipedrive/%d", l.url, l.company)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(eventBody(l.company, id)))
	req.SetBasicAuth(l.user, l.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.status = resp.StatusCode
	}
	r.latency = time.Since(r.start)
	l.mu.Lock()
	l.res = append(l.res, r)
	l.mu.Unlock()
	return r
}

// results is a copy of what was recorded so far.
func (l *loader) results() []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.res...)
}

// acked is the set of ids answered 200.
func (l *loader) acked() map[string]bool {
	m := map[string]bool{}
	for _, r := range l.results() {
		if r.status == http.StatusOK {
			m[r.id] = true
		}
	}
	return m
}

// statuses counts answers by status ("err" for transport errors).
func (l *loader) statuses() string {
	counts := map[int]int{}
	for _, r := range l.results() {
		counts[r.status]++
	}
	keys := make([]int, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := fmt.Sprint(k)
		if k == 0 {
			name = "err"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, counts[k]))
	}
	return strings.Join(parts, ",")
}

// lost counts acked ids missing from stored.
func lost(acked map[string]bool, stored map[string]int) int {
	n := 0
	for id := range acked {
		if stored[id] == 0 {
			n++
		}
	}
	return n
}

// storedWithPrefix counts distinct stored ids with prefix.
func storedWithPrefix(stored map[string]int, prefix string) int {
	n := 0
	for id := range stored {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}
