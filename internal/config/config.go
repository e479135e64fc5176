// Package config reads each function's settings from the environment the
// template gives it, and builds the JSON logger every function uses.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
)

// Environment variables. The template sets every one a function reads; a
// test holds the two to each other through Required.
const (
	EnvConnectionsTable   = "CONNECTIONS_TABLE"
	EnvItemsTable         = "ITEMS_TABLE"
	EnvTopicARN           = "TOPIC_ARN"
	EnvManagementEndpoint = "MANAGEMENT_API_ENDPOINT"
	EnvFanoutWorkers      = "FANOUT_WORKERS"
	EnvFanoutAttempts     = "FANOUT_MAX_ATTEMPTS"
	EnvConnectionTTL      = "CONNECTION_TTL"
	// EnvFanoutFunction names the function that posts the shares of a big
	// delivery (BroadcastFunction, for both functions that deliver).
	EnvFanoutFunction  = "FANOUT_FUNCTION"
	EnvFanoutShareSize = "FANOUT_SHARE_SIZE"
	EnvFanoutOwnShare  = "FANOUT_OWN_SHARE"
	EnvFanoutRate      = "FANOUT_RATE"
	// EnvAuthMode is key, oidc or none (auth.ParseMode).
	EnvAuthMode = "AUTH_MODE"
	// EnvReadAccess is public or authenticated: whether item reads need a
	// token.
	EnvReadAccess = "READ_ACCESS"
	// EnvRelayRate and EnvRelayBurst are each connection's relay token
	// bucket; a rate of 0 turns the limit off.
	EnvRelayRate  = "RELAY_RATE"
	EnvRelayBurst = "RELAY_BURST"
	// The authorizer's: the token's required issuer and audience, the
	// provider's JWKS URL (oidc; empty: the issuer's
	// /.well-known/jwks.json), the Secrets Manager secret holding
	// pushgate's signing key (key), and the Origin allow-list of $connect
	// (comma-separated; empty: any).
	EnvAuthIssuer       = "AUTH_ISSUER"
	EnvAuthAudience     = "AUTH_AUDIENCE"
	EnvAuthJWKSURL      = "AUTH_JWKS_URL"
	EnvSigningKeySecret = "SIGNING_KEY_SECRET"
	EnvAllowedOrigins   = "ALLOWED_ORIGINS"
	// EnvHistoryTTL is how long a room's history keeps each write's
	// event (a Go duration).
	EnvHistoryTTL = "HISTORY_TTL"
	// EnvOutboxGrace is how long an event stays on the outbox before the
	// sweeper publishes it: longer than a write takes to publish its own.
	EnvOutboxGrace = "OUTBOX_GRACE"
)

// Read access values.
const (
	ReadPublic        = "public"
	ReadAuthenticated = "authenticated"
)

// Function logical ids in template.yaml.
const (
	ConnectionFunction = "ConnectionFunction"
	BroadcastFunction  = "BroadcastFunction"
	ItemsReadFunction  = "ItemsReadFunction"
	ItemsWriteFunction = "ItemsWriteFunction"
	AuthorizerFunction = "AuthorizerFunction"
	OutboxFunction     = "OutboxFunction"
)

// Required returns the environment variables function's code reads and
// needs set, nil for an unknown function.
func Required(function string) []string {
	switch function {
	case ConnectionFunction:
		return []string{EnvConnectionsTable, EnvManagementEndpoint, EnvFanoutWorkers, EnvFanoutAttempts, EnvConnectionTTL,
			EnvFanoutFunction, EnvFanoutShareSize, EnvFanoutOwnShare, EnvFanoutRate, EnvAuthMode, EnvRelayRate, EnvRelayBurst}
	case BroadcastFunction:
		return []string{EnvConnectionsTable, EnvManagementEndpoint, EnvFanoutWorkers, EnvFanoutAttempts,
			EnvFanoutFunction, EnvFanoutShareSize, EnvFanoutRate, EnvTopicARN}
	case ItemsReadFunction:
		return []string{EnvItemsTable, EnvAuthMode, EnvReadAccess}
	case ItemsWriteFunction:
		return []string{EnvItemsTable, EnvTopicARN, EnvAuthMode, EnvHistoryTTL}
	case AuthorizerFunction:
		return []string{EnvAuthMode, EnvAuthIssuer, EnvAuthAudience}
	case OutboxFunction:
		return []string{EnvItemsTable, EnvTopicARN, EnvOutboxGrace}
	}
	return nil
}

// Optional returns the environment variables function reads that may be
// empty (which of them a mode needs, Load checks); the template sets them
// too.
func Optional(function string) []string {
	if function == AuthorizerFunction {
		return []string{EnvAuthJWKSURL, EnvSigningKeySecret, EnvAllowedOrigins}
	}
	return nil
}

// Functions returns every function's logical id.
func Functions() []string {
	return []string{ConnectionFunction, BroadcastFunction, ItemsReadFunction, ItemsWriteFunction, AuthorizerFunction, OutboxFunction}
}

// Config is every setting any function reads; each function uses its part.
type Config struct {
	ConnectionsTable   string
	ItemsTable         string
	TopicARN           string
	ManagementEndpoint string
	Fanout             fanout.Options
	// FanoutFunction is the function shares of a big delivery are handed
	// to.
	FanoutFunction string
	// ConnectionTTL is how long after connecting a record expires: API
	// Gateway's two-hour cut plus a margin for clock skew.
	ConnectionTTL time.Duration
	AuthMode      auth.Mode
	// ReadsAuthenticated: item reads need a token with a join grant.
	ReadsAuthenticated bool
	RelayLimit         domain.RateLimit
	Issuer             string
	Audience           string
	JWKSURL            string
	SigningKeySecret   string
	AllowedOrigins     []string
	HistoryTTL         time.Duration
	OutboxGrace        time.Duration
}

// Gate is the handlers' view of AuthMode: behind an authorizer unless auth
// is off.
func (c Config) Gate() auth.Gate { return auth.Gate{Required: c.AuthMode != auth.ModeNone} }

// ReadGate is Gate for the item reads, which READ_ACCESS may make public.
func (c Config) ReadGate() auth.Gate {
	return auth.Gate{Required: c.AuthMode != auth.ModeNone && c.ReadsAuthenticated}
}

// DefaultConnectionTTL is 2 h + 10 min.
const DefaultConnectionTTL = 2*time.Hour + 10*time.Minute

// Load reads the variables function needs from getenv (os.Getenv in
// production) and reports every missing or malformed one at once.
func Load(function string, getenv func(string) string) (Config, error) {
	names := Required(function)
	if names == nil {
		return Config{}, fmt.Errorf("config: unknown function %q", function)
	}
	c := Config{ConnectionTTL: DefaultConnectionTTL}
	var problems []string
	optional := Optional(function)
	for _, name := range append(slices.Clone(names), optional...) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			if !slices.Contains(optional, name) {
				problems = append(problems, name+" is not set")
			}
			continue
		}
		var err error
		switch name {
		case EnvConnectionsTable:
			c.ConnectionsTable = v
		case EnvItemsTable:
			c.ItemsTable = v
		case EnvTopicARN:
			c.TopicARN = v
		case EnvManagementEndpoint:
			c.ManagementEndpoint = strings.TrimRight(v, "/")
			if u, perr := url.Parse(c.ManagementEndpoint); perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				err = fmt.Errorf("must be an https:// (or http://) URL")
			}
		case EnvFanoutWorkers:
			c.Fanout.Workers, err = positive(v)
		case EnvFanoutAttempts:
			c.Fanout.Attempts, err = positive(v)
		case EnvFanoutFunction:
			c.FanoutFunction = v
		case EnvFanoutShareSize:
			c.Fanout.ShareSize, err = positive(v)
		case EnvFanoutOwnShare:
			c.Fanout.OwnShare, err = positive(v)
		case EnvFanoutRate:
			c.Fanout.Rate, err = strconv.ParseFloat(v, 64)
			if err != nil || !(c.Fanout.Rate > 0) || math.IsInf(c.Fanout.Rate, 1) {
				err = fmt.Errorf("must be a positive number of posts per second")
			}
		case EnvConnectionTTL:
			c.ConnectionTTL, err = positiveDuration(v)
		case EnvHistoryTTL:
			c.HistoryTTL, err = positiveDuration(v)
		case EnvOutboxGrace:
			c.OutboxGrace, err = positiveDuration(v)
		case EnvAuthMode:
			c.AuthMode, err = auth.ParseMode(v)
		case EnvReadAccess:
			switch v {
			case ReadPublic, ReadAuthenticated:
				c.ReadsAuthenticated = v == ReadAuthenticated
			default:
				err = fmt.Errorf("want %s or %s", ReadPublic, ReadAuthenticated)
			}
		case EnvRelayRate:
			c.RelayLimit.Rate, err = strconv.ParseFloat(v, 64)
			if err != nil || !(c.RelayLimit.Rate >= 0) || math.IsInf(c.RelayLimit.Rate, 1) {
				err = fmt.Errorf("must be a number of messages per second, 0 for no limit")
			}
		case EnvRelayBurst:
			var burst int
			burst, err = positive(v)
			c.RelayLimit.Burst = float64(burst)
		case EnvAuthIssuer:
			c.Issuer = v
		case EnvAuthAudience:
			c.Audience = v
		case EnvAuthJWKSURL:
			c.JWKSURL = v
		case EnvSigningKeySecret:
			c.SigningKeySecret = v
		case EnvAllowedOrigins:
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					c.AllowedOrigins = append(c.AllowedOrigins, o)
				}
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", name, v, err))
		}
	}
	if function == AuthorizerFunction && len(problems) == 0 {
		problems = append(problems, c.authorizerProblems()...)
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("config for %s: %s", function, strings.Join(problems, "; "))
	}
	return c, nil
}

// authorizerProblems checks what the authorizer's mode needs: a secret for
// key, a JWKS URL it can derive for oidc.
func (c *Config) authorizerProblems() []string {
	switch c.AuthMode {
	case auth.ModeKey:
		if c.SigningKeySecret == "" {
			return []string{EnvSigningKeySecret + " is not set (auth mode key verifies with the signing key it names)"}
		}
	case auth.ModeOIDC:
		if c.JWKSURL == "" {
			c.JWKSURL = strings.TrimRight(c.Issuer, "/") + "/.well-known/jwks.json"
		}
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return []string{fmt.Sprintf("%s=%q: must be the https:// URL of the provider's key set (or the issuer in %s must be one)", EnvAuthJWKSURL, c.JWKSURL, EnvAuthIssuer)}
		}
	case auth.ModeNone:
		return []string{EnvAuthMode + "=none: with auth off there is no authorizer to run"}
	}
	return nil
}

func positive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("must be a positive integer")
	}
	return n, nil
}

// positiveDuration parses a Go duration that must be positive.
func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("must be positive")
	}
	return d, err
}

// Logger returns the JSON logger; the level follows Lambda's advanced
// logging control (AWS_LAMBDA_LOG_LEVEL) when the template sets it.
func Logger(w io.Writer, getenv func(string) string) *slog.Logger {
	var level slog.Level
	// Lambda's levels are slog's plus TRACE and FATAL; slog has nothing
	// finer than debug nor coarser than error, so those map to the nearest.
	switch v := strings.ToUpper(strings.TrimSpace(getenv("AWS_LAMBDA_LOG_LEVEL"))); v {
	case "TRACE":
		level = slog.LevelDebug
	case "FATAL":
		level = slog.LevelError
	default:
		if err := level.UnmarshalText([]byte(v)); err != nil {
			level = slog.LevelInfo
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
