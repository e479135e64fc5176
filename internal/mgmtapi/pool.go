package mgmtapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"
)

// ioTimeout bounds one call's reads and writes when its context sets no
// earlier deadline.
const ioTimeout = 10 * time.Second

// pool keeps HTTP/1.1 connections to one host alive and sends one request
// at a time on each. net/http's Transport does the same with two
// goroutines per connection and a hand-off between them and the caller on
// every request, and its Request.Write and ReadResponse build a header map
// for every answer: together a third of a post's CPU at broadcast rates.
// Here the caller writes its (simple, signed) request and reads the answer
// itself, in place.
type pool struct {
	addr      string // host:port to dial
	tlsConfig *tls.Config
	dialer    net.Dialer
	idle      chan *conn
}

type conn struct {
	net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func newPool(scheme, host string, size int) (*pool, error) {
	p := &pool{addr: host, idle: make(chan *conn, size), dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
	switch scheme {
	case "https":
		name, _, err := net.SplitHostPort(host)
		if err != nil {
			name = host
			p.addr = net.JoinHostPort(host, "443")
		}
		p.tlsConfig = &tls.Config{ServerName: name, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	case "http":
		if _, _, err := net.SplitHostPort(host); err != nil {
			p.addr = net.JoinHostPort(host, "80")
		}
	default:
		return nil, fmt.Errorf("mgmtapi: endpoint scheme %q, want https or http", scheme)
	}
	return p, nil
}

func (p *pool) dial(ctx context.Context) (*conn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.tlsConfig != nil {
		tc := tls.Client(c, p.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	return &conn{Conn: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, 4096)}, nil
}

// errStale marks a kept-alive connection the server had closed before the
// request reached it: the request can be sent again on a new one.
var errStale = errors.New("mgmtapi: kept-alive connection closed")

// do sends req with body and returns the answer's status, error type and
// up to 4 KB of its body (enough for an error's message). A request that
// finds its kept-alive connection closed is sent once more on a new one.
func (p *pool) do(ctx context.Context, req *http.Request, body []byte) (answer, error) {
	for attempt := 0; ; attempt++ {
		c, reused := p.get()
		if c == nil {
			var err error
			if c, err = p.dial(ctx); err != nil {
				return answer{}, err
			}
		}
		a, err := p.roundTrip(ctx, c, req, body, reused)
		if errors.Is(err, errStale) && attempt == 0 {
			continue
		}
		return a, err
	}
}

func (p *pool) get() (*conn, bool) {
	select {
	case c := <-p.idle:
		return c, true
	default:
		return nil, false
	}
}

func (p *pool) put(c *conn) {
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

func (p *pool) roundTrip(ctx context.Context, c *conn, req *http.Request, body []byte, reused bool) (a answer, err error) {
	deadline := time.Now().Add(ioTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	// A cancelled context (the fan-out's per-post timeout) ends the I/O.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() || err != nil || a.close {
			c.Close()
			return
		}
		p.put(c)
	}()
	writeRequest(c.w, req, body)
	if err := c.w.Flush(); err != nil {
		return a, p.failure(ctx, reused, true, err)
	}
	a, err = readAnswer(c.r)
	if err != nil {
		return a, p.failure(ctx, reused, !a.started, err)
	}
	return a, nil
}

// failure explains an I/O error: the context's end, or a kept-alive
// connection the server had closed (stale, when nothing of the answer
// came), or the error itself.
func (p *pool) failure(ctx context.Context, reused, nothingRead bool, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("mgmtapi: %w (%w)", ctx.Err(), err)
	}
	if reused && nothingRead {
		return fmt.Errorf("%w: %w", errStale, err)
	}
	return err
}

// writeRequest writes req (signed, so its headers are final) and body as
// HTTP/1.1. Errors surface at Flush.
func writeRequest(w *bufio.Writer, req *http.Request, body []byte) {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.EscapedPath())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.Host)
	w.WriteString("\r\nUser-Agent: pushgate\r\nContent-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(body)), 10))
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
	w.Write(body)
}

// answer is what readAnswer takes from a response.
type answer struct {
	status int
	// errorType is X-Amzn-Errortype, up to its first ":".
	errorType string
	body      []byte // an error's, up to 4 KB
	close     bool   // the connection cannot carry another request
	// started says some of the answer had arrived (so it was no stale
	// connection).
	started bool
}

// readAnswer reads one HTTP/1.1 response: the status, the headers that
// matter here (Content-Length, Transfer-Encoding, Connection,
// X-Amzn-Errortype), and the body, an error's kept and all of it read
// away. It reads in place, without the header map http.ReadResponse
// builds for every answer.
func readAnswer(r *bufio.Reader) (answer, error) {
	var a answer
	line, err := r.ReadSlice('\n')
	if err != nil {
		return a, err
	}
	a.started = true
	// "HTTP/1.1 200 OK"
	proto, rest, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	code, _, _ := bytes.Cut(rest, []byte(" "))
	if !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(code) != 3 {
		return a, fmt.Errorf("mgmtapi: bad status line %q", line)
	}
	if a.status, err = strconv.Atoi(string(code)); err != nil {
		return a, fmt.Errorf("mgmtapi: bad status line %q", line)
	}
	a.close = bytes.Equal(proto, []byte("HTTP/1.0"))
	length, chunked := int64(-1), false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return a, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return a, fmt.Errorf("mgmtapi: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			a.close = a.close || bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("X-Amzn-Errortype")):
			typ, _, _ := bytes.Cut(value, []byte(":"))
			a.errorType = string(typ)
		}
	}
	var body io.Reader
	var sized *io.LimitedReader
	switch {
	case chunked:
		body = httputil.NewChunkedReader(r)
	case length >= 0:
		sized = &io.LimitedReader{R: r, N: length}
		body = sized
	case a.status == http.StatusNoContent || a.status == http.StatusNotModified || a.status < 200:
		body = bytes.NewReader(nil)
	default: // delimited by the connection's end
		a.close = true
		body = r
	}
	if a.status >= 300 {
		if a.body, err = io.ReadAll(io.LimitReader(body, 4096)); err != nil {
			return a, err
		}
	}
	// What is left is read too, so the connection can carry the next one.
	if _, err = io.Copy(io.Discard, body); err != nil {
		return a, err
	}
	if sized != nil && sized.N > 0 {
		return a, fmt.Errorf("mgmtapi: answer cut short: %w", io.ErrUnexpectedEOF)
	}
	if !chunked {
		return a, nil
	}
	// A chunked body ends with trailers and an empty line, which the chunk
	// reader leaves.
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return a, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return a, nil
		}
	}
}
