package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/config"
)

// Main is the `local` command. Without a subcommand it serves the stack
// until ctx ends. `invoke <Function> -e <event.json>` runs one function
// once and prints its response, as `sam local invoke` does;
// `connections` lists a running stack's open sockets; `token` mints a
// token the running stack accepts.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	cmd := ""
	if len(args) > 0 && slices.Contains([]string{"invoke", "connections", "token"}, args[0]) {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "invoke":
		return invokeCommand(ctx, args, stdin, stdout, stderr, getenv)
	case "connections":
		return connectionsCommand(ctx, args, stdout, stderr)
	case "token":
		return tokenCommand(ctx, args, stdout, stderr)
	}
	return serveCommand(ctx, args, stderr, getenv)
}

func serveCommand(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.Addr, "addr", DefaultAddr, "address to bind; 0.0.0.0 exposes the stack to your network")
	fs.IntVar(&o.HTTPPort, "http-port", DefaultHTTPPort, "HTTP API and demo page port")
	fs.IntVar(&o.WSPort, "ws-port", DefaultWSPort, "WebSocket API and Management API port")
	templateFlags(fs, &o)
	endpointFlags(fs, &o, getenv)
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 10*time.Minute, "close sockets idle this long (API Gateway: 10m)")
	fs.DurationVar(&o.MaxLifetime, "max-lifetime", 2*time.Hour, "close sockets this old (API Gateway: 2h)")
	fs.StringVar(&o.ManagementEndpoint, "management-endpoint", "", "post to connections through this endpoint (e.g. a proxy in front of the stack's own Management API) instead of the stack's")
	fs.DurationVar(&o.SchedulePeriod, "schedule-every", 0, "run the scheduled functions (the outbox sweeper) this often instead of at their template rate (OutboxSchedule, default 1 minute)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: local [flags]               serve the stack until Ctrl-C
       local invoke -h              run one function once (sam local invoke without Docker)
       local connections -h         list a running stack's open sockets
       local token -h               mint a token the running stack accepts

flags:
`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := locate(&o); err != nil {
		return err
	}
	o.Log = config.Logger(stderr, getenv)
	stack, err := Start(ctx, o)
	if err != nil {
		return err
	}
	authLine := "tokens         go run ./cmd/local token --user <you> --join '<rooms>' --write '<rooms>'"
	switch stack.AuthMode() {
	case auth.ModeNone:
		authLine = "auth           OFF (-auth none): anyone may connect, join, relay and write"
	case auth.ModeOIDC:
		authLine = "auth           oidc: tokens from your identity provider"
	}
	fmt.Fprintf(stderr, "pushgate local stack\n  demo page      %s/\n  HTTP API       %s/rooms/{room}/items/{id}\n  history        %s/rooms/{room}/events?after={seq}\n  WebSocket      %s\n  Management API %s/@connections/{id}\n  connections    %s%s\n  %s\nCtrl-C stops it.\n",
		stack.HTTPURL(), stack.HTTPURL(), stack.HTTPURL(), stack.WebSocketURL(), stack.ManagementURL(), stack.HTTPURL(), connectionsPath, authLine)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = stack.Close(shutdown)
	fmt.Fprintln(stderr, "pushgate local stack stopped")
	return err
}

func invokeCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("local invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	templateFlags(fs, &o)
	endpointFlags(fs, &o, getenv)
	event := fs.String("e", "", "the event JSON file (- for standard input)")
	function := fs.String("function", "", "the function's logical id (or give it first)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: local invoke <Function> -e events/<file>.json [flags]

Runs one function's handler once, in-process, with the template's
environment, and prints its raw response. The stores are empty and in
memory unless -dynamodb-endpoint names one that outlives the invoke.
Functions: %s

flags:
`, strings.Join(config.Functions(), ", "))
		fs.PrintDefaults()
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		// The function comes first, as with sam local invoke.
		*function, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *function == "" || *event == "" {
		fs.Usage()
		return errors.New("invoke needs a function and -e <event file>")
	}
	if !slices.Contains(config.Functions(), *function) {
		return fmt.Errorf("no function %q; the template has %s", *function, strings.Join(config.Functions(), ", "))
	}
	if err := locate(&o); err != nil {
		return err
	}
	o.Log = config.Logger(stderr, getenv)
	var body []byte
	var err error
	if *event == "-" {
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(*event)
	}
	if err != nil {
		return err
	}
	// Free ports: an invoke must not collide with a running stack.
	o.HTTPPort, o.WSPort = -1, -1
	stack, err := Start(ctx, o)
	if err != nil {
		return err
	}
	defer stack.Close(context.WithoutCancel(ctx))
	out, err := stack.Invoke(ctx, *function, body)
	if err != nil {
		return fmt.Errorf("%s: %w", *function, err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func connectionsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("local connections", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", DefaultAddr, "address of the running stack")
	port := fs.Int("http-port", DefaultHTTPPort, "its HTTP port")
	asJSON := fs.Bool("json", false, "print the stack's JSON answer as it is")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: local connections [flags]\n\nLists the open sockets of a running local stack (GET %s).\n\nflags:\n", connectionsPath)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	url := "http://" + net.JoinHostPort(*addr, strconv.Itoa(*port)) + connectionsPath
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no local stack answers at %s (start one with `go run ./cmd/local`): %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, body)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var list struct{ Connections []OpenConnection }
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CONNECTION ID\tUSER\tROOMS\tCONNECTED\tSOURCE\tUSER AGENT")
	for _, c := range list.Connections {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ConnectionID, c.User, strings.Join(c.Rooms, ","),
			c.ConnectedAt.Local().Format(time.TimeOnly), c.SourceIP, c.UserAgent)
	}
	return w.Flush()
}

func tokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("local token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", DefaultAddr, "address of the running stack")
	port := fs.Int("http-port", DefaultHTTPPort, "its HTTP port")
	var req TokenRequest
	fs.StringVar(&req.User, "user", "", "the user id the token names (its sub)")
	patterns := func(dst *[]string) func(string) error {
		return func(v string) error {
			for p := range strings.SplitSeq(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					*dst = append(*dst, p)
				}
			}
			return nil
		}
	}
	fs.Func("join", "rooms the token may connect to, subscribe to and read: `name`, prefix* or * (repeatable, or comma-separated)", patterns(&req.Join))
	fs.Func("write", "rooms the token may write items of and relay into (same forms)", patterns(&req.Write))
	fs.StringVar(&req.TTL, "ttl", DefaultTokenTTL.String(), "how long the token is valid")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: local token --user <id> [--join <rooms>] [--write <rooms>] [flags]

Mints a token signed with the running stack's development key (POST %s)
and prints it as the last line. Use it as ?token= on the WebSocket URL
and as Authorization: Bearer on the HTTP API.

flags:
`, tokenPath)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if req.User == "" {
		fs.Usage()
		return errors.New("token needs --user")
	}
	body, _ := json.Marshal(req)
	url := "http://" + net.JoinHostPort(*addr, strconv.Itoa(*port)) + tokenPath
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("no local stack answers at %s (start one with `go run ./cmd/local`): %w", url, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string                   `json:"token"`
		Error struct{ Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("%s answered %s: %w", url, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, out.Error.Message)
	}
	fmt.Fprintf(stderr, "token for %s: join %s, write %s, valid %s\n", req.User, orNone(req.Join), orNone(req.Write), req.TTL)
	_, err = fmt.Fprintln(stdout, out.Token)
	return err
}

func orNone(patterns []string) string {
	if len(patterns) == 0 {
		return "(none)"
	}
	return strings.Join(patterns, ",")
}

// endpointFlags choose external stores for a stack.
func endpointFlags(fs *flag.FlagSet, o *Options, getenv func(string) string) {
	fs.StringVar(&o.DynamoDBEndpoint, "dynamodb-endpoint", getenv("AWS_ENDPOINT_URL_DYNAMODB"), "store in DynamoDB at this endpoint (e.g. moto_server) instead of memory")
	fs.StringVar(&o.SNSEndpoint, "sns-endpoint", getenv("AWS_ENDPOINT_URL_SNS"), "publish through SNS at this endpoint instead of in-process")
}

// templateFlags are the flags every subcommand that builds a stack takes.
func templateFlags(fs *flag.FlagSet, o *Options) {
	fs.Func("auth", "the template's `AuthMode`: key (tokens signed with a development key made at start-up), oidc, or none (no auth at all; demos)", func(v string) error {
		if _, err := auth.ParseMode(v); err != nil {
			return err
		}
		if o.Parameters == nil {
			o.Parameters = map[string]string{}
		}
		o.Parameters["AuthMode"] = v
		return nil
	})
	fs.Func("signing-key-file", "sign and verify tokens with the key in this `file` (at least 32 bytes) instead of one made at start-up, so tokens outlive a restart", func(path string) error {
		key, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if key = bytes.TrimSpace(key); len(key) < auth.MinKeyBytes {
			return fmt.Errorf("%s holds %d bytes; a signing key needs at least %d", path, len(key), auth.MinKeyBytes)
		}
		o.SigningKey = key
		return nil
	})
	fs.StringVar(&o.TemplatePath, "template", "", "SAM template of the functions and routes (default: template.yaml here or in a parent directory)")
	fs.StringVar(&o.WebDir, "web", "", "directory served at / (default: web/ beside the template)")
	fs.Func("parameter", "override a template parameter's default, `Name=Value` (repeatable; as sam deploy --parameter-overrides)", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("want Name=Value, got %q", v)
		}
		if o.Parameters == nil {
			o.Parameters = map[string]string{}
		}
		o.Parameters[name] = value
		return nil
	})
}

// parse parses args and refuses stray arguments, which would otherwise be
// ignored without a word.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// locate finds template.yaml in the working directory or above it, so the
// command works from anywhere in the repository, and web/ beside it.
func locate(o *Options) error {
	if o.TemplatePath == "" {
		dir, err := os.Getwd()
		if err != nil {
			return err
		}
		for {
			p := filepath.Join(dir, "template.yaml")
			if _, err := os.Stat(p); err == nil {
				o.TemplatePath = p
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return errors.New("no template.yaml here or in a parent directory; give -template")
			}
			dir = parent
		}
	}
	if o.WebDir == "" {
		web := filepath.Join(filepath.Dir(o.TemplatePath), "web")
		if st, err := os.Stat(web); err == nil && st.IsDir() {
			o.WebDir = web
		}
	}
	return nil
}
