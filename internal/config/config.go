// Package config reads each function's settings from the environment the
// template gives it, and builds the JSON logger every function uses.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

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
)

// Function logical ids in template.yaml.
const (
	ConnectionFunction = "ConnectionFunction"
	BroadcastFunction  = "BroadcastFunction"
	ItemsReadFunction  = "ItemsReadFunction"
	ItemsWriteFunction = "ItemsWriteFunction"
)

// Required returns the environment variables function's code reads, nil
// for an unknown function.
func Required(function string) []string {
	switch function {
	case ConnectionFunction:
		return []string{EnvConnectionsTable, EnvManagementEndpoint, EnvFanoutWorkers, EnvFanoutAttempts, EnvConnectionTTL,
			EnvFanoutFunction, EnvFanoutShareSize, EnvFanoutOwnShare, EnvFanoutRate}
	case BroadcastFunction:
		return []string{EnvConnectionsTable, EnvManagementEndpoint, EnvFanoutWorkers, EnvFanoutAttempts,
			EnvFanoutFunction, EnvFanoutShareSize, EnvFanoutRate}
	case ItemsReadFunction:
		return []string{EnvItemsTable}
	case ItemsWriteFunction:
		return []string{EnvItemsTable, EnvTopicARN}
	}
	return nil
}

// Functions returns every function's logical id.
func Functions() []string {
	return []string{ConnectionFunction, BroadcastFunction, ItemsReadFunction, ItemsWriteFunction}
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
	for _, name := range names {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			problems = append(problems, name+" is not set")
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
			c.ConnectionTTL, err = time.ParseDuration(v)
			if err == nil && c.ConnectionTTL <= 0 {
				err = fmt.Errorf("must be positive")
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", name, v, err))
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("config for %s: %s", function, strings.Join(problems, "; "))
	}
	return c, nil
}

func positive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("must be a positive integer")
	}
	return n, nil
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
