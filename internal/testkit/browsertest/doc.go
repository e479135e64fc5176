// Package browsertest drives the web client in web/ with headless Chromium
// against an in-process local stack; its tests are Node scripts that the Go
// tests run, so `go test ./...` covers the browser side too.
package browsertest
