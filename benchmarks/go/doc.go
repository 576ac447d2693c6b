// Package compare holds side-by-side benchmarks of the tollgate Go binding
// and its Go peers (golang.org/x/time/rate, github.com/sony/gobreaker,
// github.com/julienschmidt/httprouter). It has no API: run ./run.sh, or go
// test -bench . in this directory.
package compare
