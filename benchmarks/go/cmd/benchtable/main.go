// Command benchtable reads `go test -bench` output of the comparison
// benchmarks on stdin and prints a markdown table: the median ns/op and
// allocs/op (from -benchmem) of each side and the ratio peer / tollgate
// (above 1: tollgate is faster). It exits
// non-zero when a benchmark of the table is missing from the input, so a run
// that skipped or broke one cannot pass for a complete comparison.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// row compares one tollgate benchmark with one peer benchmark on the same
// workload.
type row struct {
	workload string
	ours     string
	peer     string
	peerName string
}

var rows = []row{
	{"limiter, one key, time read by the caller", "LimiterTollgateAcquire", "LimiterXRateAllowN", "x/time/rate AllowN(now, 1)"},
	{"limiter, one key, clock read per call", "LimiterTollgateAcquireNowNs", "LimiterXRateAllow", "x/time/rate Allow()"},
	{"limiter, one key, AcquireMany(1000) per decision", "LimiterTollgateAcquireMany", "LimiterXRateAllowN", "x/time/rate AllowN(now, 1)"},
	{"limiter, 1000 keys, AcquireMany(1000) per decision", "KeyedTollgateAcquireMany", "KeyedXRateMapAllowN", "map of x/time/rate under a mutex"},
	{"limiter, 1000 keys, one Acquire per decision", "KeyedTollgateAcquire", "KeyedXRateMapAllowN", "map of x/time/rate under a mutex"},
	{"limiter, one key, all cores, clock read per call", "ParallelTollgateAcquireNowNs", "ParallelXRateAllow", "x/time/rate Allow()"},
	{"breaker, closed, success, time read by the caller", "BreakerTollgate", "BreakerGobreakerExecute", "gobreaker Execute(no-op)"},
	{"breaker, closed, success, clock read per call", "BreakerTollgateNowNs", "BreakerGobreakerExecute", "gobreaker Execute(no-op)"},
	{"breaker, closed, success, clock read per call", "BreakerTollgateNowNs", "BreakerGobreakerTwoStep", "gobreaker two-step Allow/done"},
	{"breaker, AcquireMany+RecordMany(1000) per decision", "BreakerTollgateMany", "BreakerGobreakerExecute", "gobreaker Execute(no-op)"},
	{"route, static paths, one Match per request", "RouteStaticTollgateMatch", "RouteStaticHttprouterLookup", "httprouter Lookup"},
	{"route, static paths, MatchMany(1000) per request", "RouteStaticTollgateMatchMany", "RouteStaticHttprouterLookup", "httprouter Lookup"},
	{"route, parametric paths, one Match per request", "RouteParamTollgateMatch", "RouteParamHttprouterLookup", "httprouter Lookup"},
	{"route, parametric paths, MatchMany(1000) per request", "RouteParamTollgateMatchMany", "RouteParamHttprouterLookup", "httprouter Lookup"},
}

var (
	line   = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op`)
	allocs = regexp.MustCompile(`\s([0-9.]+) allocs/op`)
)

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func format(ns float64) string {
	if ns < 10 {
		return strconv.FormatFloat(ns, 'f', 2, 64)
	}
	return strconv.FormatFloat(ns, 'f', 1, 64)
}

// formatAllocs is the median allocs/op, "?" without -benchmem figures.
func formatAllocs(v []float64) string {
	if len(v) == 0 {
		return "?"
	}
	return strconv.FormatFloat(median(v), 'f', -1, 64)
}

func main() {
	samples := map[string][]float64{}
	allocSamples := map[string][]float64{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		samples[m[1]] = append(samples[m[1]], v)
		if a := allocs.FindStringSubmatch(sc.Text()); a != nil {
			if n, err := strconv.ParseFloat(a[1], 64); err == nil {
				allocSamples[m[1]] = append(allocSamples[m[1]], n)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(2)
	}
	var missing []string
	need := map[string]bool{}
	for _, r := range rows {
		need[r.ours], need[r.peer] = true, true
	}
	for name := range need {
		if len(samples[name]) == 0 {
			missing = append(missing, name)
		}
	}
	runs := 0
	for _, v := range samples {
		runs = max(runs, len(v))
	}
	fmt.Printf("| workload | tollgate ns/op | tollgate allocs/op | peer | peer ns/op | peer allocs/op | peer / tollgate |\n")
	fmt.Printf("|---|---:|---:|---|---:|---:|---:|\n")
	for _, r := range rows {
		o, p := samples[r.ours], samples[r.peer]
		if len(o) == 0 || len(p) == 0 {
			continue
		}
		mo, mp := median(o), median(p)
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %.2fx |\n", r.workload, format(mo), formatAllocs(allocSamples[r.ours]),
			r.peerName, format(mp), formatAllocs(allocSamples[r.peer]), mp/mo)
	}
	fmt.Printf("\nMedians of %d run(s) per benchmark; ns/op and allocs/op are per decision (per request matched) for batched forms.\n", runs)
	if len(missing) > 0 {
		sort.Strings(missing)
		fmt.Fprintf(os.Stderr, "benchtable: no results for %s\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
}
