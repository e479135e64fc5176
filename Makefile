# Common jobs. `make local` runs the stack on this machine; `make test` runs
# every test (it installs and starts what the tests need).
GOARCH_LAMBDA ?= arm64
BIN ?= bin
FUNCTIONS := connection broadcast items-read items-write

# The one way a Lambda binary is built: by `make build`, and by `sam build`,
# whose makefile builder runs the build-<LogicalId> targets below. Static,
# stripped of local paths and of the VCS stamp, so both give the same bytes.
GOBUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) go build -tags lambda.norpc -trimpath -buildvcs=false

.PHONY: build test local bench deploy lint clean \
	build-ConnectionFunction build-BroadcastFunction build-ItemsReadFunction build-ItemsWriteFunction

build: ## the Lambda binaries as SAM packages them: $(BIN)/<function>/bootstrap
	@for f in $(FUNCTIONS); do $(GOBUILD) -o $(BIN)/$$f/bootstrap ./cmd/$$f || exit 1; done

build-ConnectionFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/connection
build-BroadcastFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/broadcast
build-ItemsReadFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/items-read
build-ItemsWriteFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/items-write

test:
	./scripts/test.sh

# Built, then run with exec: Ctrl-C reaches the stack itself, which closes
# every socket and exits 0, so make has nothing to report.
local:
	@go build -o bin/local ./cmd/local
	@exec bin/local $(ARGS)

bench:
	go test -run '^$$' -bench . -benchmem ./...

# The SAM CLI and cfn-lint on PATH, else the ones the test command installs.
SAM ?= $(shell command -v sam || echo .venv/bin/sam)
CFN_LINT ?= $(shell command -v cfn-lint || echo .venv/bin/cfn-lint)

lint:
	gofmt -l . && go vet ./... && $(CFN_LINT) template.yaml

deploy:
	$(SAM) build
	$(SAM) deploy

clean:
	rm -rf bin .aws-sam
