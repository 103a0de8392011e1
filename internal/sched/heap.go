package sched

// dueHeap orders the keys that wait for their next run by due time, the
// earliest first, so that the dispatcher finds the next due key in O(1) and
// takes it out in O(log n): a scan of every key on each wake would be O(n)
// per dispatch, which at 100,000 keys costs more than the runs themselves.
// Keys that are running are not in it.
type dueHeap[R Result] []*item[R]

func (h dueHeap[R]) less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].key < h[j].key // a stable order for keys due at once
}

func (h dueHeap[R]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *dueHeap[R]) push(it *item[R]) {
	it.index = len(*h)
	*h = append(*h, it)
	h.up(it.index)
}

// pop takes out the earliest key.
func (h *dueHeap[R]) pop() *item[R] {
	old := *h
	n := len(old) - 1
	old.swap(0, n)
	it := old[n]
	old[n] = nil // let a forgotten item be collected
	*h = old[:n]
	h.down(0)
	it.index = -1
	return it
}

// remove takes out the key at index i.
func (h *dueHeap[R]) remove(i int) {
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
	}
	it := old[n]
	old[n] = nil
	*h = old[:n]
	if i != n {
		h.fix(i)
	}
	it.index = -1
}

// fix restores the order after the due time at index i changed.
func (h dueHeap[R]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h dueHeap[R]) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down reports whether the element moved.
func (h dueHeap[R]) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n || l < 0 {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
