package backfill

import (
	"context"
	"slices"
	"strconv"
	"sync"
)

// memSource serves items from memory in pages of size, oldest change first,
// cursor = offset: a stand-in Source for engine tests (the Pipedrive
// sources are tested against the HTTP fake).
type memSource struct {
	name, entity string
	cost, size   int

	mu    sync.Mutex
	items []Item
	calls int
	fail  func(ctx context.Context, call int) error // injected error for a call, or nil
}

func (m *memSource) Name() string   { return m.name }
func (m *memSource) Entity() string { return m.entity }
func (m *memSource) Cost() int      { return m.cost }

func (m *memSource) add(its ...Item) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items = append(m.items, its...)
	slices.SortStableFunc(m.items, func(a, b Item) int { return a.UpdateTime.Compare(b.UpdateTime) })
}

func (m *memSource) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

func (m *memSource) Fetch(ctx context.Context, _ Target, w Range, cursor string) (Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if fail := m.fail; fail != nil {
		m.mu.Unlock()
		err := fail(ctx, m.calls)
		m.mu.Lock()
		if err != nil {
			return Page{}, err
		}
	}
	var in []Item
	for _, it := range m.items {
		if !it.UpdateTime.Before(w.From) && it.UpdateTime.Before(w.Until) {
			in = append(in, it)
		}
	}
	off, _ := strconv.Atoi(cursor)
	size := max(m.size, 1)
	end := min(off+size, len(in))
	p := Page{Items: slices.Clone(in[min(off, end):end]), Cost: m.cost}
	if end < len(in) {
		p.Next = strconv.Itoa(end)
	}
	return p, nil
}

// probeOf is a probe over several memSources: their items in one page.
type probeOf struct{ srcs []*memSource }

func (p probeOf) Name() string   { return "GET /v1/recents" }
func (p probeOf) Entity() string { return "" }
func (p probeOf) Cost() int      { return 20 }

func (p probeOf) Fetch(_ context.Context, _ Target, w Range, _ string) (Page, error) {
	var out []Item
	for _, s := range p.srcs {
		s.mu.Lock()
		for _, it := range s.items {
			if !it.UpdateTime.Before(w.From) {
				out = append(out, it)
			}
		}
		s.mu.Unlock()
	}
	return Page{Items: out, Cost: 20}, nil
}
