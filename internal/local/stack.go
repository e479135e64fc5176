// Package local runs the whole pushgate system in one process: the
// WebSocket API and the HTTP API emulated in front of the very handlers the
// Lambdas run, wired the way template.yaml wires them.
package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/samtemplate"
	"github.com/pushgate/pushgate/internal/local/wsgateway"
)

// Defaults of the command's flags.
const (
	DefaultAddr     = "127.0.0.1"
	DefaultHTTPPort = 3000
	DefaultWSPort   = 3001
	// Region and Account appear in the ARNs and events the stack makes up.
	Region  = "us-east-1"
	Account = "000000000000"
	// StackName stands in for AWS::StackName.
	StackName = "pushgate-local"
)

// Options configure a Stack; zero values take the defaults.
type Options struct {
	Addr             string
	HTTPPort, WSPort int // -1 picks a free port
	TemplatePath     string
	// Parameters override template parameters' defaults, by name.
	Parameters map[string]string
	// WebDir holds the static files served at / on the HTTP port.
	WebDir string
	// DynamoDBEndpoint, when set, stores in DynamoDB there (creating the
	// tables); otherwise in memory.
	DynamoDBEndpoint string
	// SNSEndpoint, when set, publishes through SNS there and receives the
	// notifications on an HTTP subscription; otherwise delivers in-process.
	SNSEndpoint string
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// SendQueueBytes bounds what waits to be written to one socket (see
	// wsgateway.Config); 0 takes wsgateway.DefaultSendQueueBytes.
	SendQueueBytes int
	// SigningKey is the development key tokens are signed with (AuthMode
	// key); empty: 32 random bytes, new at every start.
	SigningKey []byte
	// ManagementEndpoint, when set, is where the functions post to
	// connections instead of the stack's own Management API (for a proxy
	// in front of it: the stack's is ManagementURL, on WSPort).
	ManagementEndpoint string
	// SchedulePeriod, when positive, runs the scheduled functions (the
	// outbox sweeper) this often instead of at their template rate.
	SchedulePeriod time.Duration
	Log            *slog.Logger
}

// Stack is a running local stack.
type Stack struct {
	opt       Options
	stage     string
	httpLn    net.Listener
	wsLn      net.Listener
	httpSrv   *http.Server
	wsSrv     *http.Server
	gateway   *wsgateway.Gateway
	functions map[string]*function
	closeSNS  func()
	// closeReceivers wait for the notifications received from SNS.
	closeReceivers []func()
	schedules      *scheduler
	// closeInvokers waits for the shares being posted.
	closeInvokers func()
	// unsubscribe removes the stack's SNS subscriptions on Close.
	unsubscribe []func(context.Context) error
	conns       domain.ConnectionStore
	items       domain.ItemReader
	// signingKey and tokens mint the development tokens.
	signingKey []byte
	tokens     tokenSpec
	// ctx lives as long as the stack (a JWKS cache's refreshes).
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// Start builds the stack from the template and starts serving.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = DefaultHTTPPort
	}
	if o.WSPort == 0 {
		o.WSPort = DefaultWSPort
	}
	if o.TemplatePath == "" {
		o.TemplatePath = "template.yaml"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	tmpl, err := samtemplate.Load(o.TemplatePath)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s := &Stack{opt: o, stage: "prod", signingKey: o.SigningKey}
	if len(s.signingKey) == 0 {
		s.signingKey = make([]byte, auth.MinKeyBytes)
		rand.Read(s.signingKey)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if p, ok := tmpl.Parameters()["StageName"]; ok && p.HasDefault {
		s.stage = p.Default
	}
	if s.httpLn, err = listen(o.Addr, o.HTTPPort); err != nil {
		return nil, err
	}
	if s.wsLn, err = listen(o.Addr, o.WSPort); err != nil {
		s.httpLn.Close()
		return nil, err
	}
	err = s.build(ctx, tmpl)
	if err == nil {
		err = s.startSchedules(o.SchedulePeriod)
	}
	if err != nil {
		s.cancel()
		s.httpLn.Close()
		s.wsLn.Close()
		return nil, err
	}
	for _, srv := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{s.httpSrv, s.httpLn}, {s.wsSrv, s.wsLn}} {
		go func() {
			if err := srv.srv.Serve(srv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.Log.Error("local server stopped", "addr", srv.ln.Addr().String(), "error", err.Error())
			}
		}()
	}
	o.Log.Info("local stack ready", "http", s.HTTPURL(), "websocket", s.WebSocketURL(),
		"management", s.ManagementURL(), "store", storeKind(o), "sns", snsKind(o), "auth", s.AuthMode())
	return s, nil
}

func storeKind(o Options) string {
	if o.DynamoDBEndpoint != "" {
		return "dynamodb " + o.DynamoDBEndpoint
	}
	return "memory"
}

func snsKind(o Options) string {
	if o.SNSEndpoint != "" {
		return "sns " + o.SNSEndpoint
	}
	return "in-process"
}

func listen(addr string, port int) (net.Listener, error) {
	if port < 0 {
		port = 0
	}
	// No TCP keepalive, as API Gateway has none towards clients: its idle
	// timeout ends dead sockets. Go's default probes every socket each 15
	// s, and 10,000 local sockets probing at once overflow loopback's
	// receive backlog (netdev_max_backlog, 1,000): the probes are lost and
	// thousands of healthy sockets are reset.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("local: listen: %w", err)
	}
	return ln, nil
}

func baseURL(scheme string, ln net.Listener) string {
	return scheme + "://" + ln.Addr().String()
}

// HTTPURL is the HTTP API's base URL (and the demo page's).
func (s *Stack) HTTPURL() string { return baseURL("http", s.httpLn) }

// WebSocketURL is the URL browsers connect to.
func (s *Stack) WebSocketURL() string { return baseURL("ws", s.wsLn) + "/" + s.stage }

// ManagementURL is the Management API endpoint, as MANAGEMENT_API_ENDPOINT
// is for a deployed stage.
func (s *Stack) ManagementURL() string { return baseURL("http", s.wsLn) + "/" + s.stage }

// Connections is the connection store the functions share (for tests and
// tools that inspect what the stack stored).
func (s *Stack) Connections() domain.ConnectionStore { return s.conns }

// Items is the item store the functions share, read-only.
func (s *Stack) Items() domain.ItemReader { return s.items }

// ConnectionIDs lists the open sockets.
func (s *Stack) ConnectionIDs() []string { return s.gateway.IDs() }

// Invoke runs a function once with a raw event, as `sam local invoke` does,
// and returns its raw response.
func (s *Stack) Invoke(ctx context.Context, function string, event []byte) ([]byte, error) {
	f, ok := s.functions[function]
	if !ok {
		return nil, fmt.Errorf("local: no function %q in the template (have %s)", function, strings.Join(s.FunctionNames(), ", "))
	}
	return lambda.NewHandler(f.handler).Invoke(ctx, event)
}

// FunctionNames lists the template's functions.
func (s *Stack) FunctionNames() []string {
	names := make([]string, 0, len(s.functions))
	for _, n := range config.Functions() {
		if _, ok := s.functions[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

// Close closes every socket with 1001 (delivering each $disconnect), stops
// the servers and waits for in-flight deliveries.
func (s *Stack) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		errs := []error{s.gateway.Shutdown(ctx)}
		errs = append(errs, s.httpSrv.Shutdown(ctx), s.wsSrv.Shutdown(ctx))
		s.schedules.stop()
		if s.closeSNS != nil {
			s.closeSNS()
		}
		for _, c := range s.closeReceivers {
			c()
		}
		if s.closeInvokers != nil {
			s.closeInvokers()
		}
		for _, u := range s.unsubscribe {
			errs = append(errs, u(ctx))
		}
		s.cancel()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// awsConfig is the SDK configuration for the stand-ins: fixed region and
// credentials, since moto and the local Management API check neither.
func awsConfig() aws.Config {
	return aws.Config{
		Region: Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "local"}, nil
		}),
	}
}

func dynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

func snsClient(endpoint string) *sns.Client {
	return sns.NewFromConfig(awsConfig(), func(o *sns.Options) { o.BaseEndpoint = aws.String(endpoint) })
}
