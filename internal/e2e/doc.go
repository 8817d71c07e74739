// Package e2e holds end-to-end tests that build the real calhook binary,
// run it as a separate process on loopback with a temporary SQLite
// database, and drive it through its public HTTP API only, as a client and
// a webhook receiver would.
//
// The tests are ordinary Go tests and run with `go test ./...`; the binary
// is built once per test binary.
package e2e
