module github.com/tollgate-dev/tollgate/bindings/go

go 1.24
