package main

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// histogram is a lock-free log-linear latency histogram in microseconds
// (HDR-style, 10 significant bits: ≤ 0.2 % error), shared by all workers:
// recording is two atomic adds, no allocation.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64 // nanoseconds
	maxMu  sync.Mutex
	maxAt  time.Duration // when the slowest request was due, from the start
	sum    atomic.Int64  // nanoseconds
	n      atomic.Uint64
}

const (
	histSubBits = 10
	histSub     = 1 << histSubBits // exact below 1024 µs
	histBuckets = histSub + 40*(histSub/2)
)

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - histSubBits // ≥ 1
	m := us >> shift                      // in [512, 1023]
	i := histSub + (shift-1)*(histSub/2) + int(m-histSub/2)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histValue is the upper bound (µs) of bucket i, so percentiles never
// understate latency.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	j := i - histSub
	shift := j/(histSub/2) + 1
	m := uint64(j%(histSub/2) + histSub/2)
	return (m+1)<<shift - 1
}

// record adds latency d of a request due at offset at from the start.
func (h *histogram) record(d, at time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d/time.Microsecond))].Add(1)
	h.n.Add(1)
	h.sum.Add(int64(d))
	if int64(d) <= h.max.Load() {
		return
	}
	h.maxMu.Lock() // rare: only a new maximum gets here
	if int64(d) > h.max.Load() {
		h.max.Store(int64(d))
		h.maxAt = at
	}
	h.maxMu.Unlock()
}

// quantile returns the latency at q (0..1).
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			d := time.Duration(histValue(i)) * time.Microsecond
			if m := time.Duration(h.max.Load()); d > m {
				d = m
			}
			return d
		}
	}
	return time.Duration(h.max.Load())
}

func (h *histogram) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}
