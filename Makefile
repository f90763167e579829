# The one entry point for every task. `make help` lists the targets.
SHELL := /bin/bash
BIN := bin/levqor
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/levqor/levqor.Version=$(VERSION) -X github.com/levqor/levqor.Commit=$(COMMIT)

.PHONY: help generate check-generated build run test lint lint-openapi bench scale-demo ci clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

generate: ## regenerate gen/ from api/openapi.yaml and sql/
	go tool oapi-codegen -config oapi.yaml api/openapi.yaml
	go tool oapi-codegen -config oapi-client.yaml api/openapi.yaml
	go tool -modfile=tools.mod sqlc generate

check-generated: generate ## fail when committed generated code is stale
	@git diff --exit-code -- gen/ || { echo "gen/ is stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "gen/ has untracked files: run make generate and commit" >&2; exit 1; }

build: ## build the static binary into bin/levqor
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/levqor

run: build ## build, migrate and serve on SQLite at :8080
	./$(BIN) serve

# PostgreSQL and Redis on 127.0.0.1 are used when they answer and no URL is set, so
# `make test` tests both engines on a machine that has them.
DEFAULT_PG_URL := postgres://postgres@127.0.0.1:5432/test?sslmode=disable
DEFAULT_REDIS_URL := redis://127.0.0.1:6379/0

test: ## run every test (PostgreSQL and Redis on 127.0.0.1 too when they answer)
	@pg="$${LEVQOR_TEST_POSTGRES_URL:-}"; rd="$${LEVQOR_TEST_REDIS_URL:-}"; \
	if [ -z "$$pg" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then pg='$(DEFAULT_PG_URL)'; fi; \
	if [ -z "$$rd" ] && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then rd='$(DEFAULT_REDIS_URL)'; fi; \
	echo "PostgreSQL: $${pg:-not tested (none on 127.0.0.1:5432)}; Redis: $${rd:-not tested (none on 127.0.0.1:6379)}"; \
	LEVQOR_TEST_POSTGRES_URL="$$pg" LEVQOR_TEST_REDIS_URL="$$rd" go test -count=1 -race ./...

lint: lint-openapi ## go vet, staticcheck, gofmt and the OpenAPI lints
	go vet ./...
	go tool -modfile=tools.mod staticcheck ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); test -z "$$out" || { echo "gofmt would change: $$out" >&2; exit 1; }
	go test -count=1 -run "^TestSpecLint$$" ./server/

# The OpenAPI linter a user's CI would run: Redocly CLI, pinned in tools/openapi-lint's
# package-lock.json and installed by npm ci when missing or when the lockfile changes.
OPENAPI_LINT := tools/openapi-lint

$(OPENAPI_LINT)/node_modules/.package-lock.json: $(OPENAPI_LINT)/package-lock.json
	npm ci --prefix $(OPENAPI_LINT) --no-audit --no-fund

lint-openapi: $(OPENAPI_LINT)/node_modules/.package-lock.json ## Redocly CLI's recommended-strict rules on api/openapi.yaml
	cd $(OPENAPI_LINT) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		./node_modules/.bin/redocly lint --config redocly.yaml ../../api/openapi.yaml

bench: build ## the performance numbers of the issues (see docs/benchmarks.md)
	go test -run '^$$' -bench . -benchtime 2s -count 5 ./server/ ./store/... ./budget/ ./connectors/ai/ | tee bench.out
	go build -o bin/levqor-bench ./cmd/levqor-bench && ./bin/levqor-bench -bin $(BIN)

scale-demo: ## 3 instances on PostgreSQL + Redis behind a proxy, one SIGKILLed mid-load (needs LEVQOR_TEST_POSTGRES_URL, LEVQOR_TEST_REDIS_URL)
	LEVQOR_SCALE_DEMO=1 go test -count=1 -run '^TestScaleDemo$$' -v -timeout 10m ./cmd/levqor/ | grep -E 'scale|rate limit|acknowledged|PASS|FAIL|ok '

ci: lint check-generated test ## what .ci/run runs

clean:
	rm -rf bin bench.out $(OPENAPI_LINT)/node_modules
