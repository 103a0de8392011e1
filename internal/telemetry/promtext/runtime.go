package promtext

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// runtimeFamilies are the Go runtime's metrics (go_*, from runtime/metrics
// without stopping the world, the go_memstats_* names kept for what they
// always meant) and the process's (process_*, from /proc).
func runtimeFamilies() []*family {
	return append(goFamilies(), processFamilies()...)
}

// goMetrics are the runtime/metrics samples read at each scrape.
var goMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/metadata/mcache/free:bytes",
	"/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/metadata/mspan/free:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/profiling/buckets:bytes",
	"/memory/classes/other:bytes",
	"/memory/classes/total:bytes",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/gc/heap/frees:objects",
	"/gc/heap/tiny/allocs:objects",
	"/gc/heap/objects:objects",
	"/gc/heap/goal:bytes",
	"/gc/gogc:percent",
	"/gc/gomemlimit:bytes",
	"/sched/gomaxprocs:threads",
}

func gauge(name, help string, v float64) *family {
	return &family{name: name, help: help, typ: "gauge", samples: []sample{{value: v}}}
}

func counter(name, help string, v float64) *family {
	return &family{name: name, help: help, typ: "counter", samples: []sample{{value: v}}}
}

func goFamilies() []*family {
	samples := make([]metrics.Sample, len(goMetrics))
	for i, n := range goMetrics {
		samples[i].Name = n
	}
	metrics.Read(samples)
	v := make(map[string]float64, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			v[s.Name] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			v[s.Name] = s.Value.Float64()
		}
	}
	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	pauses := &family{name: "go_gc_duration_seconds", help: "Stop-the-world pause durations of the garbage collector.", typ: "summary"}
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		pauses.samples = append(pauses.samples, sample{extra: label{"quantile", q}, value: gc.PauseQuantiles[i].Seconds()})
	}
	pauses.samples = append(pauses.samples,
		sample{suffix: "_sum", value: gc.PauseTotal.Seconds()},
		sample{suffix: "_count", value: float64(gc.NumGC)})
	threads, _ := runtime.ThreadCreateProfile(nil)
	var lastGC float64
	if !gc.LastGC.IsZero() {
		lastGC = float64(gc.LastGC.UnixNano()) / 1e9
	}

	objects, unused := v["/memory/classes/heap/objects:bytes"], v["/memory/classes/heap/unused:bytes"]
	free, released := v["/memory/classes/heap/free:bytes"], v["/memory/classes/heap/released:bytes"]
	stacks := v["/memory/classes/heap/stacks:bytes"]
	tiny := v["/gc/heap/tiny/allocs:objects"]
	return []*family{
		pauses,
		gauge("go_gc_gogc_percent", "The GOGC in force (the gateway's default 50 unless GOGC is set).", v["/gc/gogc:percent"]),
		gauge("go_gc_gomemlimit_bytes", "The Go memory limit in force (GOMEMLIMIT; math.MaxInt64 when none).", v["/gc/gomemlimit:bytes"]),
		gauge("go_goroutines", "Goroutines that exist.", float64(runtime.NumGoroutine())),
		{name: "go_info", help: "The Go version the gateway was built with.", typ: "gauge", samples: []sample{{labels: []label{{"version", runtime.Version()}}, value: 1}}},
		gauge("go_memstats_alloc_bytes", "Heap bytes allocated and in use (/memory/classes/heap/objects:bytes).", objects),
		counter("go_memstats_alloc_bytes_total", "Heap bytes allocated, freed ones included (/gc/heap/allocs:bytes).", v["/gc/heap/allocs:bytes"]),
		gauge("go_memstats_buck_hash_sys_bytes", "Bytes of the profiling bucket hash table.", v["/memory/classes/profiling/buckets:bytes"]),
		counter("go_memstats_frees_total", "Heap objects freed.", v["/gc/heap/frees:objects"]+tiny),
		gauge("go_memstats_gc_sys_bytes", "Bytes of garbage-collection metadata.", v["/memory/classes/metadata/other:bytes"]),
		gauge("go_memstats_heap_alloc_bytes", "Heap bytes allocated and in use, as go_memstats_alloc_bytes.", objects),
		gauge("go_memstats_heap_idle_bytes", "Heap bytes not in use: free and released.", free+released),
		gauge("go_memstats_heap_inuse_bytes", "Heap bytes in spans in use.", objects+unused),
		gauge("go_memstats_heap_objects", "Heap objects allocated and not freed.", v["/gc/heap/objects:objects"]),
		gauge("go_memstats_heap_released_bytes", "Heap bytes returned to the operating system.", released),
		gauge("go_memstats_heap_sys_bytes", "Heap bytes obtained from the operating system.", objects+unused+free+released),
		gauge("go_memstats_last_gc_time_seconds", "When the last garbage collection ended, in seconds since 1970.", lastGC),
		counter("go_memstats_mallocs_total", "Heap objects allocated.", v["/gc/heap/allocs:objects"]+tiny),
		gauge("go_memstats_mcache_inuse_bytes", "Bytes of mcache structures in use.", v["/memory/classes/metadata/mcache/inuse:bytes"]),
		gauge("go_memstats_mcache_sys_bytes", "Bytes of mcache structures obtained from the operating system.", v["/memory/classes/metadata/mcache/inuse:bytes"]+v["/memory/classes/metadata/mcache/free:bytes"]),
		gauge("go_memstats_mspan_inuse_bytes", "Bytes of mspan structures in use.", v["/memory/classes/metadata/mspan/inuse:bytes"]),
		gauge("go_memstats_mspan_sys_bytes", "Bytes of mspan structures obtained from the operating system.", v["/memory/classes/metadata/mspan/inuse:bytes"]+v["/memory/classes/metadata/mspan/free:bytes"]),
		gauge("go_memstats_next_gc_bytes", "Heap size at which the next garbage collection starts (/gc/heap/goal:bytes).", v["/gc/heap/goal:bytes"]),
		gauge("go_memstats_other_sys_bytes", "Bytes of other runtime allocations.", v["/memory/classes/other:bytes"]),
		gauge("go_memstats_stack_inuse_bytes", "Bytes of goroutine stacks in use.", stacks),
		gauge("go_memstats_stack_sys_bytes", "Bytes of stacks obtained from the operating system, those of OS threads included.", stacks+v["/memory/classes/os-stacks:bytes"]),
		gauge("go_memstats_sys_bytes", "Bytes obtained from the operating system (/memory/classes/total:bytes).", v["/memory/classes/total:bytes"]),
		gauge("go_sched_gomaxprocs_threads", "GOMAXPROCS: threads that can run Go code at once.", v["/sched/gomaxprocs:threads"]),
		gauge("go_threads", "Operating system threads created.", float64(threads)),
	}
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat on Linux.
const userHZ = 100

// processFamilies reads /proc/self; off Linux (no /proc) there are none.
func processFamilies() []*family {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is field 3 of proc(5), so index 0 here.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(stat[i+1:]))
	field := func(n int) float64 { // n as numbered in proc(5)
		if n-3 >= len(f) {
			return 0
		}
		x, _ := strconv.ParseFloat(f[n-3], 64)
		return x
	}
	out := []*family{
		counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", (field(14)+field(15))/userHZ),
		gauge("process_resident_memory_bytes", "Resident memory, in bytes.", field(24)*float64(os.Getpagesize())),
		gauge("process_virtual_memory_bytes", "Virtual memory, in bytes.", field(23)),
	}
	if boot := bootTime(); boot > 0 {
		out = append(out, gauge("process_start_time_seconds", "When the process started, in seconds since 1970.", boot+field(22)/userHZ))
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		out = append(out, gauge("process_open_fds", "Open file descriptors.", float64(len(fds))))
	}
	if files, space, ok := limits(); ok {
		out = append(out,
			gauge("process_max_fds", "Limit of open file descriptors.", files),
			gauge("process_virtual_memory_max_bytes", "Limit of virtual memory, in bytes.", space))
	}
	if rx, tx, ok := netBytes(); ok {
		out = append(out,
			counter("process_network_receive_bytes_total", "Bytes received over the network by the process's network namespace.", rx),
			counter("process_network_transmit_bytes_total", "Bytes sent over the network by the process's network namespace.", tx))
	}
	return out
}

func bootTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// limits reads the soft limits of open files and address space;
// "unlimited" is the largest uint64, as the kernel's RLIM_INFINITY.
func limits() (files, space float64, ok bool) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, 0, false
	}
	soft := func(rest string) float64 {
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		if f[0] == "unlimited" {
			return float64(^uint64(0))
		}
		v, _ := strconv.ParseFloat(f[0], 64)
		return v
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, found := strings.CutPrefix(line, "Max open files"); found {
			files, ok = soft(rest), true
		} else if rest, found := strings.CutPrefix(line, "Max address space"); found {
			space = soft(rest)
		}
	}
	return files, space, ok
}

// netBytes sums the bytes received and sent over every interface of the
// process's network namespace (/proc/self/net/dev).
func netBytes() (rx, tx float64, ok bool) {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		return 0, 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		_, counters, found := strings.Cut(line, ":")
		f := strings.Fields(counters)
		if !found || len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseFloat(f[0], 64)
		t, err2 := strconv.ParseFloat(f[8], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		rx, tx, ok = rx+r, tx+t, true
	}
	return rx, tx, ok
}
