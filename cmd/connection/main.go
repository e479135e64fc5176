// Command connection is the WebSocket Lambda ($connect, $disconnect,
// $default); a relay to a big room hands its shares to the broadcaster.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	lambdaapi "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/lambdainvoke"
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
	shares := broadcast.Shares(lambdainvoke.New(lambdaapi.NewFromConfig(awsCfg), cfg.FanoutFunction))
	set := wsapi.Settings{TTL: cfg.ConnectionTTL, Gate: cfg.Gate(), RelayLimit: cfg.RelayLimit}
	h := wsapi.New(conns, fanout.New(poster, conns, cfg.Fanout).WithDispatcher(shares).WithCloser(poster), set, log)
	lambda.Start(h.Handle)
}
