module github.com/tollgate-dev/tollgate/benchmarks/go

go 1.26.0

replace github.com/tollgate-dev/tollgate/bindings/go => ../../bindings/go

require (
	github.com/julienschmidt/httprouter v1.3.0
	github.com/sony/gobreaker/v2 v2.4.0
	github.com/tollgate-dev/tollgate/bindings/go v0.0.0-00010101000000-000000000000
	golang.org/x/time v0.16.0
)
