# Common jobs. `make local` runs the stack on this machine; `make test` runs
# every test (it installs and starts what the tests need).
GOARCH_LAMBDA ?= arm64
BIN ?= bin
FUNCTIONS := connection broadcast items-read items-write authorizer outbox

# The one way a Lambda binary is built: by `make build`, and by `sam build`,
# whose makefile builder runs the build-<LogicalId> targets below. Static,
# stripped of local paths and of the VCS stamp, so both give the same bytes.
GOBUILD = CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) go build -tags lambda.norpc -trimpath -buildvcs=false

.PHONY: build test local bench fuzz deploy lint clean \
	build-ConnectionFunction build-BroadcastFunction build-ItemsReadFunction build-ItemsWriteFunction \
	build-AuthorizerFunction build-OutboxFunction

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
build-AuthorizerFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/authorizer
build-OutboxFunction:
	$(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/outbox

test:
	./scripts/test.sh

# Built, then run with exec: Ctrl-C reaches the stack itself, which closes
# every socket and exits 0, so make has nothing to report.
local:
	@go build -o bin/local ./cmd/local
	@exec bin/local $(ARGS)

bench:
	go test -run '^$$' -bench . -benchmem ./...

# Every fuzz target, each for FUZZTIME (go test takes one -fuzz target per
# package at a time). Their seed corpora (testdata/fuzz/, and f.Add) run in
# `make test` as ordinary tests; a finding lands in testdata/fuzz/ too:
# fix it and commit the file, and it stays a regression case.
FUZZTIME ?= 30s
# Minimizing a new input may otherwise take a minute of the budget each.
FUZZMINIMIZETIME ?= 2s
FUZZ_TARGETS := \
	./internal/wire:FuzzParseFrame \
	./internal/httpapi:FuzzHandle \
	./internal/broadcast:FuzzInvoke \
	./internal/auth:FuzzVerify \
	./internal/auth:FuzzFromContext \
	./internal/authorizer:FuzzAuthorizer

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg || exit 1; \
	done

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
