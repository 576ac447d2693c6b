// Route matching: the tollgate binding's RouteTable against
// github.com/julienschmidt/httprouter, on the generated API table of the
// C++ router benchmarks (benchmarks/route_workload.hpp, 200 routes: 20
// resources x 10 shapes, all GET).
//
// httprouter refuses a static segment next to a parameter at the same
// position ("/v1/orders/search" next to "/v1/orders/:id"), so the workload
// keeps the largest set of shapes the httprouter version in go.mod accepts
// (found by trying them, not assumed) and both sides get that same table.
// Requests cycle through a ring of 4096 concrete paths (one per route,
// repeated, shuffled with a fixed seed), static and parametric paths
// separately; every benchmark walks the same ring in the same order.
// Before timing, both sides must route every concrete path to its route
// (a per-route marker) with the same parameter values; in the timed loop
// tollgate's route id and httprouter's handle and parameter count are
// checked, and a miss fails the benchmark.
package compare

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/julienschmidt/httprouter"
	tollgate "github.com/tollgate-dev/tollgate/bindings/go"
)

const routeRing = 4096 // a power of two, as in router_bench.cpp

// routeShape is one of the ten route shapes per resource: the pattern in
// tollgate syntax and the concrete path that must match it.
type routeShape struct{ pattern, path string }

var routeResources = [20]string{
	"orders", "fills", "accounts", "positions", "instruments", "venues", "quotes",
	"trades", "risk", "limits", "users", "keys", "sessions", "books",
	"algos", "allocations", "reports", "audits", "alerts", "configs"}

// routeShapes is route_workload.hpp's shape list for resource res.
func routeShapes(res string) [10]routeShape {
	base := "/v1/" + res
	return [10]routeShape{
		{base, base},
		{base + "/search", base + "/search"},
		{base + "/summary", base + "/summary"},
		{base + "/{id}", base + "/8812734"},
		{base + "/{id}/history", base + "/8812734/history"},
		{base + "/{id}/status", base + "/8812734/status"},
		{base + "/{id}/events/{event}", base + "/8812734/events/ev-19"},
		{"/v1/by-account/{account}/" + res, "/v1/by-account/ACC-771/" + res},
		{"/v1/by-account/{account}/" + res + "/{id}", "/v1/by-account/ACC-771/" + res + "/90210"},
		{base + "-export/{year}/{month}/{file}", base + "-export/2026/11/report.csv"},
	}
}

// httprouterPattern turns "{name}" segments into ":name".
func httprouterPattern(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(segs, "/")
}

// routeSpec is one route of the workload as both sides see it.
type routeSpec struct {
	id         uint32
	pattern    string // tollgate syntax
	hrPattern  string // httprouter syntax
	path       string // the concrete path that must match it
	params     []string
	parametric bool
}

// expectedParams are the values path gives pattern's parameters, in order.
func expectedParams(pattern, path string) []string {
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	var out []string
	for i, s := range ps {
		if strings.HasPrefix(s, "{") {
			out = append(out, qs[i])
		}
	}
	return out
}

// httprouterAccepts reports whether httprouter builds a table of the given
// shapes for every resource (it panics on a conflict), and the panic if not.
func httprouterAccepts(shapes []int) (ok bool, why string) {
	defer func() {
		if r := recover(); r != nil {
			ok, why = false, fmt.Sprint(r)
		}
	}()
	r := httprouter.New()
	noop := func(http.ResponseWriter, *http.Request, httprouter.Params) {}
	for _, res := range routeResources {
		all := routeShapes(res)
		for _, s := range shapes {
			r.GET(httprouterPattern(all[s].pattern), noop)
		}
	}
	return true, ""
}

// routeWorkload is the table both sides build and the rings of requests.
type routeWorkload struct {
	routes  []routeSpec
	dropped []int    // shapes httprouter refuses next to the kept ones
	refusal string   // httprouter's panic for the full table
	static  []int    // ring of indexes into routes, routeRing+batch long
	param   []int    // (the tail repeats the head, for batches that wrap)
	shapes  []string // the kept shapes' patterns, for the record
}

var (
	workloadOnce sync.Once
	workload     *routeWorkload
)

// getRouteWorkload finds the largest set of the ten shapes httprouter
// accepts (ties: the one keeping earlier shapes), then builds the routes
// and rings.
func getRouteWorkload() *routeWorkload {
	workloadOnce.Do(func() {
		w := &routeWorkload{}
		all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
		if ok, why := httprouterAccepts(all); !ok {
			w.refusal = why
		}
		best := -1
		for size := 10; size > 0 && best < 0; size-- {
			// Masks of this size, in the order that keeps earlier shapes first.
			for mask := (1 << 10) - 1; mask > 0; mask-- {
				if popcount(mask) != size {
					continue
				}
				if ok, _ := httprouterAccepts(shapesOf(mask)); ok {
					best = mask
					break
				}
			}
		}
		keep := shapesOf(best)
		for s := range 10 {
			if best&(1<<(9-s)) == 0 {
				w.dropped = append(w.dropped, s)
			}
		}
		for _, s := range keep {
			w.shapes = append(w.shapes, routeShapes("{res}")[s].pattern)
		}
		for _, res := range routeResources {
			shapes := routeShapes(res)
			for _, s := range keep {
				sh := shapes[s]
				w.routes = append(w.routes, routeSpec{
					id:         uint32(len(w.routes)),
					pattern:    sh.pattern,
					hrPattern:  httprouterPattern(sh.pattern),
					path:       sh.path,
					params:     expectedParams(sh.pattern, sh.path),
					parametric: strings.Contains(sh.pattern, "{"),
				})
			}
		}
		var statics, params []int
		for i, r := range w.routes {
			if r.parametric {
				params = append(params, i)
			} else {
				statics = append(statics, i)
			}
		}
		rng := rand.New(rand.NewPCG(42, 42))
		w.static = ring(statics, rng)
		w.param = ring(params, rng)
		workload = w
	})
	return workload
}

// shapesOf lists the shapes of mask, bit 9 being shape 0.
func shapesOf(mask int) []int {
	var s []int
	for i := range 10 {
		if mask&(1<<(9-i)) != 0 {
			s = append(s, i)
		}
	}
	return s
}

func popcount(m int) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// ring repeats v to routeRing entries, shuffles them and appends the first
// batch entries again, so ring[off:off+batch] never wraps.
func ring(v []int, rng *rand.Rand) []int {
	if len(v) == 0 {
		return nil
	}
	out := make([]int, 0, routeRing+batch)
	for len(out) < routeRing {
		out = append(out, v...)
	}
	out = out[:routeRing]
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return append(out, out[:batch]...)
}

// newRouteTable builds the tollgate table and checks that it routes every
// concrete path to its rule with the expected parameters.
func newRouteTable(b testing.TB, w *routeWorkload) *tollgate.RouteTable {
	rules := make([]tollgate.Rule, len(w.routes))
	for i, r := range w.routes {
		rules[i] = tollgate.Rule{RouteID: r.id, Methods: []string{"GET"}, Path: r.pattern, VenueSet: tollgate.NoVenueSet}
	}
	t, err := tollgate.NewRouteTable(rules, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	for _, r := range w.routes {
		m, err := t.Match(tollgate.Request{Method: "GET", Path: r.path})
		if err != nil || m.Status != tollgate.RouteMatched || m.RouteID != r.id || len(m.Params) != len(r.params) {
			b.Fatalf("tollgate routes %s to %+v (%v), want route %d (%s)", r.path, m, err, r.id, r.pattern)
		}
		for k, want := range r.params {
			if got := m.Param(r.path, k); got != want {
				b.Fatalf("tollgate: %s parameter %d = %q, want %q", r.path, k, got, want)
			}
		}
	}
	return t
}

// newHTTPRouter builds the httprouter table (each handle records its
// route's id when called) and checks it the same way with Lookup.
func newHTTPRouter(b testing.TB, w *routeWorkload) *httprouter.Router {
	hr := httprouter.New()
	var hit uint32
	for _, r := range w.routes {
		id := r.id
		hr.GET(r.hrPattern, func(http.ResponseWriter, *http.Request, httprouter.Params) { hit = id })
	}
	for _, r := range w.routes {
		h, ps, _ := hr.Lookup("GET", r.path)
		if h == nil {
			b.Fatalf("httprouter finds no route for %s, want route %d (%s)", r.path, r.id, r.hrPattern)
		}
		hit = ^uint32(0)
		h(nil, nil, ps)
		if hit != r.id || len(ps) != len(r.params) {
			b.Fatalf("httprouter routes %s to route %d with %d parameters, want route %d (%s) with %d", r.path, hit, len(ps), r.id, r.hrPattern, len(r.params))
		}
		for k, want := range r.params {
			if ps[k].Value != want {
				b.Fatalf("httprouter: %s parameter %s = %q, want %q", r.path, ps[k].Key, ps[k].Value, want)
			}
		}
	}
	return hr
}

func routeRingOf(b *testing.B, w *routeWorkload, parametric bool) []int {
	r := w.static
	if parametric {
		r = w.param
	}
	if len(r) == 0 {
		b.Skip("no route of this kind survives httprouter's conflicts")
	}
	return r
}

// tollgate Match: one cgo call per request.
func benchRouteTollgateMatch(b *testing.B, parametric bool) {
	w := getRouteWorkload()
	order := routeRingOf(b, w, parametric)
	t := newRouteTable(b, w)
	reqs := make([]tollgate.Request, len(order))
	want := make([]uint32, len(order))
	for i, k := range order {
		reqs[i] = tollgate.Request{Method: "GET", Path: w.routes[k].path}
		want[i] = w.routes[k].id
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & (routeRing - 1)
		m, err := t.Match(reqs[j])
		if err != nil || m.RouteID != want[j] || m.Status != tollgate.RouteMatched {
			b.Fatal(m, err)
		}
	}
}

// tollgate MatchMany: one cgo call per batch of 1000 requests.
func benchRouteTollgateMatchMany(b *testing.B, parametric bool) {
	w := getRouteWorkload()
	order := routeRingOf(b, w, parametric)
	t := newRouteTable(b, w)
	reqs := make([]tollgate.Request, len(order))
	want := make([]uint32, len(order))
	for i, k := range order {
		reqs[i] = tollgate.Request{Method: "GET", Path: w.routes[k].path}
		want[i] = w.routes[k].id
	}
	out := make([]tollgate.Match, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		off := done & (routeRing - 1)
		if err := t.MatchMany(reqs[off:off+n], out[:n]); err != nil {
			b.Fatal(err)
		}
		for k := range out[:n] {
			if out[k].RouteID != want[off+k] || out[k].Status != tollgate.RouteMatched {
				b.Fatal(out[k])
			}
		}
	}
}

// httprouter Lookup: the tree walk without serving HTTP.
func benchRouteHttprouterLookup(b *testing.B, parametric bool) {
	w := getRouteWorkload()
	order := routeRingOf(b, w, parametric)
	hr := newHTTPRouter(b, w)
	paths := make([]string, len(order))
	want := make([]int, len(order))
	for i, k := range order {
		paths[i] = w.routes[k].path
		want[i] = len(w.routes[k].params)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & (routeRing - 1)
		h, ps, _ := hr.Lookup("GET", paths[j])
		if h == nil || len(ps) != want[j] {
			b.Fatal(paths[j], ps)
		}
	}
}

func BenchmarkRouteStaticTollgateMatch(b *testing.B)     { benchRouteTollgateMatch(b, false) }
func BenchmarkRouteStaticTollgateMatchMany(b *testing.B) { benchRouteTollgateMatchMany(b, false) }
func BenchmarkRouteStaticHttprouterLookup(b *testing.B)  { benchRouteHttprouterLookup(b, false) }
func BenchmarkRouteParamTollgateMatch(b *testing.B)      { benchRouteTollgateMatch(b, true) }
func BenchmarkRouteParamTollgateMatchMany(b *testing.B)  { benchRouteTollgateMatchMany(b, true) }
func BenchmarkRouteParamHttprouterLookup(b *testing.B)   { benchRouteHttprouterLookup(b, true) }

// TestRouteWorkload records which shapes httprouter refused and checks
// that both sides route the kept table identically (go test -run Route -v).
func TestRouteWorkload(t *testing.T) {
	w := getRouteWorkload()
	t.Logf("httprouter on the full table: %s", w.refusal)
	for _, s := range w.dropped {
		t.Logf("dropped shape %s", routeShapes("{res}")[s].pattern)
	}
	statics := 0
	for _, r := range w.routes {
		if !r.parametric {
			statics++
		}
	}
	t.Logf("kept %d routes (%d static, %d parametric) of %d shapes: %s",
		len(w.routes), statics, len(w.routes)-statics, len(w.shapes), strings.Join(w.shapes, " "))
	newRouteTable(t, w)
	newHTTPRouter(t, w)
}
