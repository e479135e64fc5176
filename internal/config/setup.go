package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/pushgate/pushgate/internal/auth"
)

// Setup is the start of every Lambda's main: the logger, function's
// configuration and the AWS SDK configuration (which honours
// AWS_ENDPOINT_URL_<SERVICE>, so a main runs unchanged against moto). It
// exits the process on a configuration error, since a Lambda that cannot
// configure itself should fail its init, visibly, rather than serve.
func Setup(ctx context.Context, function string) (Config, aws.Config, *slog.Logger) {
	log := Logger(os.Stdout, os.Getenv).With("function", function)
	cfg, err := Load(function, os.Getenv)
	if err == nil {
		var awsCfg aws.Config
		awsCfg, err = awsconfig.LoadDefaultConfig(ctx)
		if err == nil {
			WarnIfOpen(log, cfg)
			return cfg, awsCfg, log
		}
		err = fmt.Errorf("aws config: %w", err)
	}
	Exit(log, err)
	return Config{}, aws.Config{}, nil
}

// Exit ends a Lambda's init that cannot go on, with one log line.
func Exit(log *slog.Logger, err error) {
	log.Error("cannot start", "error", err.Error())
	os.Exit(1)
}

// WarnIfOpen logs, loudly, that auth is off: every function logs it once per
// container, so no one runs a demo stack in production unawares.
func WarnIfOpen(log *slog.Logger, cfg Config) {
	if cfg.AuthMode == auth.ModeNone {
		log.Warn("AUTH IS OFF (AuthMode=none): anyone who finds the URLs may connect, join any room, relay and write; for demos only")
	}
}
