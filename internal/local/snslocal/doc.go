// Package snslocal stands in for SNS's delivery to Lambda on the local
// stack: in-process delivery of published events, and an HTTP subscription
// endpoint that turns a real SNS's notifications into Lambda SNS events.
package snslocal
