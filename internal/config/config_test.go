package config_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
)

// fullEnv sets every variable any function reads, with the odd spacing and
// trailing slash a hand-edited template may have.
func fullEnv() map[string]string {
	return map[string]string{
		config.EnvConnectionsTable:   "conns",
		config.EnvItemsTable:         "items",
		config.EnvTopicARN:           "arn:aws:sns:us-east-1:123456789012:events",
		config.EnvManagementEndpoint: "https://abc.execute-api.us-east-1.amazonaws.com/prod/",
		config.EnvFanoutWorkers:      " 16 ",
		config.EnvFanoutAttempts:     "3",
		config.EnvConnectionTTL:      "90m",
		config.EnvFanoutFunction:     "stack-BroadcastFunction",
		config.EnvFanoutShareSize:    "20000",
		config.EnvFanoutOwnShare:     "1000",
		config.EnvFanoutRate:         "2500.5",
		config.EnvAuthMode:           "key",
		config.EnvReadAccess:         "authenticated",
		config.EnvRelayRate:          "20",
		config.EnvRelayBurst:         "40",
		config.EnvAuthIssuer:         "pushgate",
		config.EnvAuthAudience:       "app",
		config.EnvAuthJWKSURL:        "",
		config.EnvSigningKeySecret:   "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
		config.EnvAllowedOrigins:     " https://a.example , https://b.example,",
		config.EnvHistoryTTL:         "24h",
		config.EnvOutboxGrace:        "45s",
	}
}

func getenv(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

func without(env map[string]string, names ...string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		if !slices.Contains(names, k) {
			out[k] = v
		}
	}
	return out
}

func with(env map[string]string, name, value string) map[string]string {
	out := without(env)
	out[name] = value
	return out
}

func TestLoadEveryFunction(t *testing.T) {
	endpoint := "https://abc.execute-api.us-east-1.amazonaws.com/prod"
	want := map[string]config.Config{
		config.ConnectionFunction: {
			ConnectionsTable: "conns", ManagementEndpoint: endpoint, FanoutFunction: "stack-BroadcastFunction",
			Fanout:        fanout.Options{Workers: 16, Attempts: 3, ShareSize: 20000, OwnShare: 1000, Rate: 2500.5},
			ConnectionTTL: 90 * time.Minute, AuthMode: auth.ModeKey, RelayLimit: domain.RateLimit{Rate: 20, Burst: 40},
		},
		config.BroadcastFunction: {
			ConnectionsTable: "conns", ManagementEndpoint: endpoint, FanoutFunction: "stack-BroadcastFunction",
			Fanout:        fanout.Options{Workers: 16, Attempts: 3, ShareSize: 20000, Rate: 2500.5},
			ConnectionTTL: config.DefaultConnectionTTL, TopicARN: "arn:aws:sns:us-east-1:123456789012:events",
		},
		config.ItemsReadFunction: {
			ItemsTable: "items", ConnectionTTL: config.DefaultConnectionTTL, AuthMode: auth.ModeKey, ReadsAuthenticated: true,
		},
		config.ItemsWriteFunction: {
			ItemsTable: "items", TopicARN: "arn:aws:sns:us-east-1:123456789012:events",
			ConnectionTTL: config.DefaultConnectionTTL, AuthMode: auth.ModeKey, HistoryTTL: 24 * time.Hour,
		},
		config.OutboxFunction: {
			ItemsTable: "items", TopicARN: "arn:aws:sns:us-east-1:123456789012:events",
			ConnectionTTL: config.DefaultConnectionTTL, OutboxGrace: 45 * time.Second,
		},
		config.AuthorizerFunction: {
			ConnectionTTL: config.DefaultConnectionTTL, AuthMode: auth.ModeKey, Issuer: "pushgate", Audience: "app",
			SigningKeySecret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
			AllowedOrigins:   []string{"https://a.example", "https://b.example"},
		},
	}
	if len(want) != len(config.Functions()) {
		t.Fatalf("test covers %d functions, config.Functions() has %d", len(want), len(config.Functions()))
	}
	for _, fn := range config.Functions() {
		t.Run(fn, func(t *testing.T) {
			w, ok := want[fn]
			if !ok {
				t.Fatalf("no expectation for function %s", fn)
			}
			got, err := config.Load(fn, getenv(fullEnv()))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("Load =\n %+v\nwant\n %+v", got, w)
			}
		})
	}
}

func TestLoadReportsEachMissingVariable(t *testing.T) {
	for _, fn := range config.Functions() {
		for _, name := range config.Required(fn) {
			for _, missing := range []struct {
				how string
				env map[string]string
			}{
				{"unset", without(fullEnv(), name)},
				{"blank", with(fullEnv(), name, "  \t")},
			} {
				t.Run(fn+"/"+name+"/"+missing.how, func(t *testing.T) {
					_, err := config.Load(fn, getenv(missing.env))
					if err == nil {
						t.Fatalf("Load accepted %s %s", name, missing.how)
					}
					msg := err.Error()
					if !strings.Contains(msg, name+" is not set") || !strings.Contains(msg, fn) {
						t.Fatalf("error %q does not name %s and %s", msg, name, fn)
					}
					for _, other := range config.Required(fn) {
						if other != name && strings.Contains(msg, other) {
							t.Fatalf("error %q mentions %s, which is set", msg, other)
						}
					}
				})
			}
		}
	}
}

func TestLoadReportsAllProblemsAtOnce(t *testing.T) {
	tests := []struct {
		name string
		fn   string
		env  map[string]string
		want []string
	}{
		{"nothing set", config.ConnectionFunction, map[string]string{}, []string{
			config.EnvConnectionsTable + " is not set",
			config.EnvManagementEndpoint + " is not set",
			config.EnvFanoutWorkers + " is not set",
			config.EnvFanoutAttempts + " is not set",
			config.EnvConnectionTTL + " is not set",
		}},
		{"missing and malformed", config.BroadcastFunction,
			with(with(without(fullEnv(), config.EnvConnectionsTable), config.EnvFanoutWorkers, "many"), config.EnvFanoutAttempts, "0"),
			[]string{
				config.EnvConnectionsTable + " is not set",
				config.EnvFanoutWorkers + `="many"`,
				config.EnvFanoutAttempts + `="0"`,
			}},
		{"items write nothing set", config.ItemsWriteFunction, map[string]string{}, []string{
			config.EnvItemsTable + " is not set",
			config.EnvTopicARN + " is not set",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(tc.fn, getenv(tc.env))
			if err == nil {
				t.Fatal("Load accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadRejectsMalformedNumbers(t *testing.T) {
	tests := []struct {
		name  string
		value string
	}{
		{config.EnvFanoutWorkers, "0"},
		{config.EnvFanoutWorkers, "-1"},
		{config.EnvFanoutWorkers, "abc"},
		{config.EnvFanoutWorkers, "1.5"},
		{config.EnvFanoutWorkers, "4x"},
		{config.EnvFanoutWorkers, "99999999999999999999"},
		{config.EnvFanoutAttempts, "0"},
		{config.EnvFanoutAttempts, "-3"},
		{config.EnvFanoutAttempts, "three"},
		{config.EnvFanoutAttempts, "2 3"},
		{config.EnvConnectionTTL, "0s"},
		{config.EnvConnectionTTL, "-1h"},
		{config.EnvConnectionTTL, "7800"},
		{config.EnvConnectionTTL, "two hours"},
		{config.EnvConnectionTTL, "2d"},
		{config.EnvFanoutShareSize, "0"},
		{config.EnvFanoutShareSize, "ten"},
		{config.EnvFanoutOwnShare, "-5"},
		{config.EnvFanoutRate, "0"},
		{config.EnvFanoutRate, "-100"},
		{config.EnvFanoutRate, "fast"},
		{config.EnvFanoutRate, "NaN"},
		{config.EnvFanoutRate, "+Inf"},
		{config.EnvAuthMode, "off"},
		{config.EnvAuthMode, "KEY"},
		{config.EnvRelayRate, "-1"},
		{config.EnvRelayRate, "NaN"},
		{config.EnvRelayRate, "lots"},
		{config.EnvRelayBurst, "0"},
		{config.EnvRelayBurst, "2.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := config.Load(config.ConnectionFunction, getenv(with(fullEnv(), tc.name, tc.value)))
			if err == nil {
				t.Fatalf("Load accepted %s=%q", tc.name, tc.value)
			}
			if want := tc.name + "=" + `"` + tc.value + `"`; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not quote %s", err, want)
			}
		})
	}
}

func TestLoadIgnoresVariablesTheFunctionDoesNotRead(t *testing.T) {
	env := with(fullEnv(), config.EnvFanoutWorkers, "not a number")
	env = with(env, config.EnvConnectionTTL, "never")
	got, err := config.Load(config.ItemsReadFunction, getenv(env))
	if err != nil {
		t.Fatalf("Load(%s) = %v; it does not read the fan-out settings", config.ItemsReadFunction, err)
	}
	if got.ItemsTable != "items" || got.ConnectionsTable != "" || got.Fanout != (fanout.Options{}) {
		t.Fatalf("Load = %+v", got)
	}
}

func TestLoadUnknownFunction(t *testing.T) {
	if got := config.Required("NoSuchFunction"); got != nil {
		t.Fatalf("Required(unknown) = %v, want nil", got)
	}
	_, err := config.Load("NoSuchFunction", getenv(fullEnv()))
	if err == nil || !strings.Contains(err.Error(), `"NoSuchFunction"`) {
		t.Fatalf("Load(unknown) = %v, want an error naming the function", err)
	}
}

func TestRequiredReturnsAFreshSlice(t *testing.T) {
	known := []string{
		config.EnvConnectionsTable, config.EnvItemsTable, config.EnvTopicARN, config.EnvManagementEndpoint,
		config.EnvFanoutWorkers, config.EnvFanoutAttempts, config.EnvConnectionTTL,
		config.EnvFanoutFunction, config.EnvFanoutShareSize, config.EnvFanoutOwnShare, config.EnvFanoutRate,
		config.EnvAuthMode, config.EnvReadAccess, config.EnvRelayRate, config.EnvRelayBurst,
		config.EnvAuthIssuer, config.EnvAuthAudience, config.EnvHistoryTTL, config.EnvOutboxGrace,
	}
	for _, fn := range config.Functions() {
		t.Run(fn, func(t *testing.T) {
			first := config.Required(fn)
			if len(first) == 0 {
				t.Fatal("Required is empty")
			}
			want := slices.Clone(first)
			for _, name := range first {
				if !slices.Contains(known, name) {
					t.Errorf("Required lists %q, not an Env constant", name)
				}
			}
			first[0] = "MUTATED"
			_ = append(first[:1], "APPENDED")
			if again := config.Required(fn); !slices.Equal(again, want) {
				t.Fatalf("Required after mutating an earlier result = %v, want %v", again, want)
			}
		})
	}
	fns := config.Functions()
	fns[0] = "MUTATED"
	if config.Functions()[0] == "MUTATED" {
		t.Fatal("Functions returns a shared slice")
	}
}

type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Time  string `json:"time"`
	Key   string `json:"key"`
}

func TestLogger(t *testing.T) {
	tests := []struct {
		level string
		want  []string // messages expected, of debug, info, warn, error
	}{
		{"", []string{"info", "warn", "error"}},
		{"DEBUG", []string{"debug", "info", "warn", "error"}},
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"TRACE", []string{"debug", "info", "warn", "error"}},
		{"INFO", []string{"info", "warn", "error"}},
		{"WARN", []string{"warn", "error"}},
		{"ERROR", []string{"error"}},
		{"FATAL", []string{"error"}},
		{"LOUD", []string{"info", "warn", "error"}},
	}
	for _, tc := range tests {
		t.Run("level="+tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			log := config.Logger(&buf, getenv(map[string]string{"AWS_LAMBDA_LOG_LEVEL": tc.level}))
			log.Debug("debug", "key", "v")
			log.Info("info", "key", "v")
			log.Warn("warn", "key", "v")
			log.Error("error", "key", "v")

			var got []string
			sc := bufio.NewScanner(&buf)
			for sc.Scan() {
				var l logLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
				}
				if l.Time == "" || l.Key != "v" || !strings.EqualFold(l.Level, l.Msg) {
					t.Fatalf("log line %q lacks time, level or attributes", sc.Text())
				}
				got = append(got, l.Msg)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AWS_LAMBDA_LOG_LEVEL=%q logged %v, want %v", tc.level, got, tc.want)
			}
		})
	}
}

func TestLoadAuthSettings(t *testing.T) {
	tests := []struct {
		name    string
		fn      string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c config.Config)
	}{
		{"read access public", config.ItemsReadFunction, with(fullEnv(), config.EnvReadAccess, "public"), "", func(t *testing.T, c config.Config) {
			if c.ReadsAuthenticated || c.ReadGate().Required || !c.Gate().Required {
				t.Errorf("public reads: ReadGate %+v Gate %+v", c.ReadGate(), c.Gate())
			}
		}},
		{"read access unknown", config.ItemsReadFunction, with(fullEnv(), config.EnvReadAccess, "everyone"), config.EnvReadAccess + `="everyone"`, nil},
		{"auth none opens every gate", config.ItemsReadFunction, with(fullEnv(), config.EnvAuthMode, "none"), "", func(t *testing.T, c config.Config) {
			if c.Gate().Required || c.ReadGate().Required {
				t.Errorf("auth none: Gate %+v ReadGate %+v", c.Gate(), c.ReadGate())
			}
		}},
		{"relay limit off", config.ConnectionFunction, with(fullEnv(), config.EnvRelayRate, "0"), "", func(t *testing.T, c config.Config) {
			if c.RelayLimit.Rate != 0 || c.RelayLimit.Burst != 40 {
				t.Errorf("RelayLimit = %+v", c.RelayLimit)
			}
		}},
		{"key mode needs its secret", config.AuthorizerFunction, without(fullEnv(), config.EnvSigningKeySecret), config.EnvSigningKeySecret + " is not set", nil},
		{"oidc derives the JWKS URL from the issuer", config.AuthorizerFunction,
			with(with(fullEnv(), config.EnvAuthMode, "oidc"), config.EnvAuthIssuer, "https://idp.example/tenant/"), "", func(t *testing.T, c config.Config) {
				if c.JWKSURL != "https://idp.example/tenant/.well-known/jwks.json" {
					t.Errorf("JWKSURL = %q", c.JWKSURL)
				}
			}},
		{"oidc with an issuer that is no URL and no JWKS URL", config.AuthorizerFunction, with(fullEnv(), config.EnvAuthMode, "oidc"), config.EnvAuthJWKSURL, nil},
		{"oidc with its own JWKS URL", config.AuthorizerFunction,
			with(with(fullEnv(), config.EnvAuthMode, "oidc"), config.EnvAuthJWKSURL, "https://idp.example/keys"), "", func(t *testing.T, c config.Config) {
				if c.JWKSURL != "https://idp.example/keys" {
					t.Errorf("JWKSURL = %q", c.JWKSURL)
				}
			}},
		{"no authorizer with auth off", config.AuthorizerFunction, with(fullEnv(), config.EnvAuthMode, "none"), "auth off", nil},
		{"no origins is any origin", config.AuthorizerFunction, without(fullEnv(), config.EnvAllowedOrigins), "", func(t *testing.T, c config.Config) {
			if c.AllowedOrigins != nil {
				t.Errorf("AllowedOrigins = %q", c.AllowedOrigins)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(tc.fn, getenv(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.check(t, c)
		})
	}
}
