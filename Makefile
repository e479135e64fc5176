# Common jobs. `make local` runs the stack on this machine; `make test` runs
# every test (it starts the stand-ins it needs).
GOARCH_LAMBDA ?= arm64
FUNCTIONS := connection broadcast items-read items-write

.PHONY: build test local bench deploy lint clean

build: ## the Lambda binaries as SAM packages them: bin/<function>/bootstrap
	@for f in $(FUNCTIONS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) go build -tags lambda.norpc -trimpath \
			-o bin/$$f/bootstrap ./cmd/$$f || exit 1; \
	done

test:
	./scripts/test.sh

local:
	go run ./cmd/local

bench:
	go test -run '^$$' -bench . -benchmem ./...

lint:
	gofmt -l . && go vet ./... && cfn-lint template.yaml

# sam build's Go builder sets only GOOS/GOARCH; the rest comes from here.
deploy:
	CGO_ENABLED=0 GOFLAGS="-tags=lambda.norpc -trimpath -buildvcs=false" sam build
	sam deploy

clean:
	rm -rf bin .aws-sam
