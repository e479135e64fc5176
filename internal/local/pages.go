package local

import (
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/local/asyncinvoke"
	"github.com/pushgate/pushgate/internal/local/snslocal"
)

// connectionsPath lists the open sockets (GET), a local-only endpoint: a
// deployed stack has no such list.
const connectionsPath = "/_local/connections"

// localRoutes serves what only the local stack has on the HTTP port: the
// pages of web/, config.json, the open connections and the SNS
// subscription endpoints. It claims a request only when it can answer it,
// so everything else reaches the template's routes, $default included.
func (s *Stack) localRoutes() func(*http.Request) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.json", s.serveConfig)
	mux.HandleFunc("GET "+connectionsPath, s.serveConnections)
	mux.HandleFunc("POST "+tokenPath, s.serveToken)
	for _, fn := range s.functions {
		if fn.sns != nil && s.opt.SNSEndpoint != "" {
			// SNS invokes a subscribed Lambda asynchronously, which retries a
			// failed invocation twice; moto's HTTP delivery ignores the
			// answer, so the queue is where the retries happen.
			q := asyncinvoke.New(fn.deployedName, fn.sns, fn.timeout(), fn.log)
			s.closeReceivers = append(s.closeReceivers, q.Close)
			deliver := func(ctx context.Context, ev events.SNSEvent) error {
				return q.Invoke(ctx, "notification "+ev.Records[0].SNS.MessageID, ev)
			}
			mux.Handle("POST "+snsPath+fn.name, snslocal.Receiver("arn:aws:sns:"+Region+":"+Account+":local:"+fn.name, deliver, fn.log))
		}
	}
	var files http.Handler
	var root fs.FS
	if s.opt.WebDir != "" {
		files = http.FileServer(http.Dir(s.opt.WebDir))
		root = os.DirFS(s.opt.WebDir)
	}
	return func(r *http.Request) http.Handler {
		if h, pattern := mux.Handler(r); pattern != "" {
			return h
		}
		if files != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && hasPage(root, r.URL.Path) {
			return files
		}
		return nil
	}
}

// hasPage reports whether the file server would find a page for p: a
// file, or a directory with an index.html.
func hasPage(root fs.FS, p string) bool {
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "."
	}
	st, err := fs.Stat(root, name)
	if err != nil {
		return false
	}
	if st.IsDir() {
		_, err = fs.Stat(root, path.Join(name, "index.html"))
		return err == nil
	}
	return true
}

func (s *Stack) serveConfig(w http.ResponseWriter, r *http.Request) {
	// The host the browser reached, not the bind address: with -addr
	// 0.0.0.0 the page may be opened from another machine.
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	_, wsPort, _ := net.SplitHostPort(s.wsLn.Addr().String())
	cfg := map[string]string{
		"httpApi":   "http://" + r.Host,
		"webSocket": "ws://" + net.JoinHostPort(host, wsPort) + "/" + s.stage,
		"auth":      string(s.AuthMode()),
	}
	// The demo page's token: every room, for the pages this stack serves.
	if s.AuthMode() == auth.ModeKey {
		token, err := s.Token(TokenRequest{User: "demo-page", Join: []string{"*"}, Write: []string{"*"}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cfg["token"] = token
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(cfg)
}

// OpenConnection is one open socket as GET /_local/connections lists it.
type OpenConnection struct {
	ConnectionID string    `json:"connectionId"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent"`
	// Rooms is what the connection store holds; nil when it holds no record.
	Rooms []string `json:"rooms"`
	// User is who the token named ("anonymous" with auth off).
	User string `json:"user,omitempty"`
}

func (s *Stack) serveConnections(w http.ResponseWriter, r *http.Request) {
	list := []OpenConnection{}
	for _, id := range s.gateway.IDs() {
		info, ok := s.gateway.Info(id)
		if !ok {
			continue
		}
		c := OpenConnection{ConnectionID: id, ConnectedAt: info.ConnectedAt.UTC(), LastActiveAt: info.LastActiveAt.UTC(),
			SourceIP: info.SourceIP, UserAgent: info.UserAgent}
		if rec, err := s.conns.Get(r.Context(), id); err == nil {
			c.Rooms, c.User = rec.Rooms, rec.Identity
		}
		list = append(list, c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"connections": list})
}
