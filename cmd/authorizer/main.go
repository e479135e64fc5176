// Command authorizer is the Lambda authorizer of both APIs: it verifies
// tokens ($connect's ?token=, the HTTP API's Authorization: Bearer) and
// passes the caller's room grants on to the other functions.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/authorizer"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/signingkey"
)

func main() {
	ctx := context.Background()
	cfg, awsCfg, log := config.Setup(ctx, config.AuthorizerFunction)
	v, err := auth.ForMode(ctx, auth.ModeConfig{
		Mode: cfg.AuthMode, Issuer: cfg.Issuer, Audience: cfg.Audience, JWKSURL: cfg.JWKSURL,
		Fetch: signingkey.Fetch(secretsmanager.NewFromConfig(awsCfg), cfg.SigningKeySecret),
	})
	if err != nil {
		config.Exit(log, err)
	}
	lambda.Start(authorizer.New(v, cfg.AllowedOrigins, log).Invoke)
}
