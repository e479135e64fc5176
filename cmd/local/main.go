// Command local runs the whole pushgate stack on this machine — WebSocket
// API, HTTP API, Management API, broadcaster, store — with no AWS account
// and no Docker. `local invoke <Function> -e <event.json>` runs one function
// once, as `sam local invoke` would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/localstack"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "local:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	invoke := len(args) > 0 && args[0] == "invoke"
	if invoke {
		args = args[1:]
	}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := localstack.Options{}
	fs.StringVar(&o.Addr, "addr", localstack.DefaultAddr, "address to bind; 0.0.0.0 exposes the stack to your network")
	fs.IntVar(&o.HTTPPort, "http-port", localstack.DefaultHTTPPort, "HTTP API and demo page port")
	fs.IntVar(&o.WSPort, "ws-port", localstack.DefaultWSPort, "WebSocket API and Management API port")
	fs.StringVar(&o.TemplatePath, "template", "template.yaml", "SAM template that defines the functions and routes")
	fs.StringVar(&o.WebDir, "web", "web", "directory of the demo page and browser client, served at /")
	fs.StringVar(&o.DynamoDBEndpoint, "dynamodb-endpoint", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "store in DynamoDB at this endpoint (e.g. moto_server) instead of memory")
	fs.StringVar(&o.SNSEndpoint, "sns-endpoint", os.Getenv("AWS_ENDPOINT_URL_SNS"), "publish through SNS at this endpoint instead of in-process")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 10*time.Minute, "close sockets idle this long (API Gateway: 10m)")
	fs.DurationVar(&o.MaxLifetime, "max-lifetime", 2*time.Hour, "close sockets this old (API Gateway: 2h)")
	event := fs.String("e", "", "invoke: the event JSON file (- for stdin)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: local [flags]\n       local invoke <FunctionLogicalId> -e events/<file>.json [flags]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if invoke && len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		// The function comes first, as with sam local invoke.
		args = append(args[1:], "-function="+args[0])
	}
	function := fs.String("function", "", "invoke: the function's logical id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Log = config.Logger(stderr, os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if invoke {
		return runInvoke(ctx, o, *function, *event, stdout)
	}
	stack, err := localstack.Start(ctx, o)
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

func runInvoke(ctx context.Context, o localstack.Options, function, eventPath string, stdout io.Writer) error {
	if function == "" || eventPath == "" {
		return fmt.Errorf("invoke needs a function and -e <event file>")
	}
	var event []byte
	var err error
	if eventPath == "-" {
		event, err = io.ReadAll(os.Stdin)
	} else {
		event, err = os.ReadFile(eventPath)
	}
	if err != nil {
		return err
	}
	// Free ports: an invoke must not collide with a running stack.
	o.HTTPPort, o.WSPort = -1, -1
	stack, err := localstack.Start(ctx, o)
	if err != nil {
		return err
	}
	defer stack.Close(context.Background())
	out, err := stack.Invoke(ctx, function, event)
	if err != nil {
		return fmt.Errorf("%s: %w", function, err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
