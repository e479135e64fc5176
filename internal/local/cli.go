package local

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pushgate/pushgate/internal/config"
)

// Main is the `local` command: it serves the stack until ctx ends, or with
// `invoke <Function> -e <event.json>` runs one function once and prints its
// response, as `sam local invoke` does.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	invoke := len(args) > 0 && args[0] == "invoke"
	if invoke {
		args = args[1:]
	}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.Addr, "addr", DefaultAddr, "address to bind; 0.0.0.0 exposes the stack to your network")
	fs.IntVar(&o.HTTPPort, "http-port", DefaultHTTPPort, "HTTP API and demo page port")
	fs.IntVar(&o.WSPort, "ws-port", DefaultWSPort, "WebSocket API and Management API port")
	fs.StringVar(&o.TemplatePath, "template", "", "SAM template of the functions and routes (default: template.yaml here or in a parent directory)")
	fs.StringVar(&o.WebDir, "web", "", "directory served at / (default: web/ beside the template)")
	fs.StringVar(&o.DynamoDBEndpoint, "dynamodb-endpoint", getenv("AWS_ENDPOINT_URL_DYNAMODB"), "store in DynamoDB at this endpoint (e.g. moto_server) instead of memory")
	fs.StringVar(&o.SNSEndpoint, "sns-endpoint", getenv("AWS_ENDPOINT_URL_SNS"), "publish through SNS at this endpoint instead of in-process")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 10*time.Minute, "close sockets idle this long (API Gateway: 10m)")
	fs.DurationVar(&o.MaxLifetime, "max-lifetime", 2*time.Hour, "close sockets this old (API Gateway: 2h)")
	event := fs.String("e", "", "invoke: the event JSON file (- for standard input)")
	function := fs.String("function", "", "invoke: the function's logical id (or give it first)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: local [flags]\n       local invoke <FunctionLogicalId> -e events/<file>.json [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if invoke && len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		// The function comes first, as with sam local invoke.
		*function, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := locate(&o); err != nil {
		return err
	}
	o.Log = config.Logger(stderr, getenv)
	if invoke {
		return runInvoke(ctx, o, *function, *event, stdin, stdout)
	}
	stack, err := Start(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "pushgate local stack\n  demo page      %s/\n  HTTP API       %s/rooms/{room}/items/{id}\n  WebSocket      %s\n  Management API %s/@connections/{id}\nCtrl-C stops it.\n",
		stack.HTTPURL(), stack.HTTPURL(), stack.WebSocketURL(), stack.ManagementURL())
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return stack.Close(shutdown)
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

func runInvoke(ctx context.Context, o Options, function, eventPath string, stdin io.Reader, stdout io.Writer) error {
	if function == "" || eventPath == "" {
		return errors.New("invoke needs a function and -e <event file>")
	}
	var event []byte
	var err error
	if eventPath == "-" {
		event, err = io.ReadAll(stdin)
	} else {
		event, err = os.ReadFile(eventPath)
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
	out, err := stack.Invoke(ctx, function, event)
	if err != nil {
		return fmt.Errorf("%s: %w", function, err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
