// Command connection is the WebSocket Lambda ($connect, $disconnect, $default).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/mgmtapi"
	"github.com/pushgate/pushgate/internal/wsapi"
)

func main() {
	cfg, awsCfg, log := config.Setup(context.Background(), config.ConnectionFunction)
	conns := dynamo.NewConnections(dynamodb.NewFromConfig(awsCfg), cfg.ConnectionsTable)
	poster, err := mgmtapi.New(awsCfg, cfg.ManagementEndpoint, cfg.Fanout.Workers)
	if err != nil {
		config.Exit(log, err)
	}
	h := wsapi.New(conns, fanout.New(poster, conns, cfg.Fanout), cfg.ConnectionTTL, log)
	lambda.Start(h.Handle)
}
