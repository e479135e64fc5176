// Package mgmtapi posts frames to WebSocket connections through the API
// Gateway Management API (PostToConnection), as the fan-out's domain.Poster.
package mgmtapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/pushgate/pushgate/internal/domain"
)

// service is the name SigV4 signs Management API calls for.
const service = "execute-api"

// Client posts to one stage of one WebSocket API. It is PostToConnection
// and DeleteConnection without the SDK's client stack: a broadcast posts
// the same frame to thousands of connections, and the stack's middleware
// cost 100–250 µs of CPU a post. What can be is done once: the URL prefix,
// the credentials (cached), the signer and its derived key, the hash of the
// frame; each post signs and sends one request on a kept-alive
// connection. Requests are built as the SDK's client builds them (path
// escaping, signed headers), which a test holds it to.
type Client struct {
	base   *url.URL // endpoint + "/@connections/"
	region string
	creds  aws.CredentialsProvider
	signer *v4.Signer
	pool   *pool

	mu       sync.Mutex
	lastBody *byte // the frame whose hash is lastHash
	lastLen  int
	lastHash string
}

// New returns a Client for endpoint (https://{api-id}.execute-api.{region}.amazonaws.com/{stage},
// a custom domain, or a local emulator), signing with cfg's credentials for
// cfg's region. conns sizes the pool of kept-alive connections, so every
// post in flight reuses one. An endpoint that is no http(s) URL is an
// error.
func New(cfg aws.Config, endpoint string, conns int) (*Client, error) {
	creds := cfg.Credentials
	if _, cached := creds.(*aws.CredentialsCache); !cached && creds != nil {
		creds = aws.NewCredentialsCache(creds)
	}
	base, err := url.Parse(strings.TrimRight(endpoint, "/") + "/@connections/")
	if err != nil {
		return nil, fmt.Errorf("mgmtapi: endpoint %q: %w", endpoint, err)
	}
	p, err := newPool(base.Scheme, base.Host, conns)
	if err != nil {
		return nil, err
	}
	return &Client{base: base, region: cfg.Region, creds: creds, signer: v4.NewSigner(), pool: p}, nil
}

// Post sends frame to the connection. A failure is a *domain.PostError
// carrying the HTTP status: 410 for a connection that is gone, 429 for a
// throttle, 0 for a transport failure.
func (c *Client) Post(ctx context.Context, connectionID string, frame []byte) error {
	return c.call(ctx, http.MethodPost, connectionID, frame)
}

// Delete closes the connection (DeleteConnection); a gone connection is not
// an error.
func (c *Client) Delete(ctx context.Context, connectionID string) error {
	err := c.call(ctx, http.MethodDelete, connectionID, nil)
	var pe *domain.PostError
	if errors.As(err, &pe) && pe.Gone() {
		return nil
	}
	return err
}

func (c *Client) call(ctx context.Context, method, connectionID string, body []byte) error {
	req, err := c.request(ctx, method, connectionID, body)
	if err != nil {
		return &domain.PostError{ConnectionID: connectionID, Err: err}
	}
	a, err := c.pool.do(ctx, req, body)
	if err != nil {
		return &domain.PostError{ConnectionID: connectionID, Err: fmt.Errorf("mgmtapi: %s: %w", method, err)}
	}
	if a.status >= 200 && a.status < 300 {
		return nil
	}
	return &domain.PostError{ConnectionID: connectionID, Status: a.status,
		Err: fmt.Errorf("mgmtapi: %s %d %s: %s", method, a.status, a.errorType, bytes.TrimSpace(a.body))}
}

// request builds and signs one call, as the SDK's client would: the id
// escaped as a path segment, the body's SHA-256 in the signature.
func (c *Client) request(ctx context.Context, method, connectionID string, body []byte) (*http.Request, error) {
	escaped := httpbinding.EscapePath(connectionID, true)
	u := &url.URL{Scheme: c.base.Scheme, Host: c.base.Host, Path: c.base.Path + connectionID, RawPath: c.base.EscapedPath() + escaped}
	req := &http.Request{Method: method, URL: u, Host: u.Host, Header: make(http.Header, 6), ContentLength: int64(len(body))}
	req = req.WithContext(ctx)
	if body != nil {
		req.Header["Content-Type"] = octetStream
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("mgmtapi: credentials: %w", err)
	}
	if err := c.signer.SignHTTP(ctx, creds, req, c.hash(body), service, c.region, time.Now()); err != nil {
		return nil, fmt.Errorf("mgmtapi: sign: %w", err)
	}
	return req, nil
}

var octetStream = []string{"application/octet-stream"}

// hash is the hex SHA-256 of body, kept for the frame of the broadcast
// under way: every post of it carries the same bytes.
func (c *Client) hash(body []byte) string {
	if len(body) == 0 {
		return emptyHash
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastBody == &body[0] && c.lastLen == len(body) {
		return c.lastHash
	}
	sum := sha256.Sum256(body)
	c.lastBody, c.lastLen, c.lastHash = &body[0], len(body), hex.EncodeToString(sum[:])
	return c.lastHash
}

// emptyHash is the SHA-256 of no bytes.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
