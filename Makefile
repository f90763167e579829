# The one entry point for every task. `make help` lists the targets.
SHELL := /bin/bash
BIN := bin/levqor
TS_CLIENT := clients/ts
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/levqor/levqor.Version=$(VERSION) -X github.com/levqor/levqor.Commit=$(COMMIT)

.PHONY: help generate check-generated build run test lint lint-openapi bench bench-guard scale-demo test-faults ci clean test-ts test-web web

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

generate: $(TS_CLIENT)/node_modules/.package-lock.json ## regenerate gen/, api/spec/openapi.json and clients/ts from api/openapi.yaml and sql/
	go tool oapi-codegen -config oapi.yaml api/openapi.yaml
	go generate ./api/spec
	go tool oapi-codegen -config oapi-client.yaml api/openapi.yaml
	go tool -modfile=tools.mod sqlc generate
	cd $(TS_CLIENT) && npm run --silent generate

check-generated: generate ## fail when committed generated code is stale
	@git diff --exit-code -- gen/ api/spec/openapi.json $(TS_CLIENT)/src/schema.ts $(TS_CLIENT)/package.json || { echo "generated code is stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- gen/ $(TS_CLIENT)/src/)" || { git status --porcelain -- gen/ $(TS_CLIENT)/src/; echo "generated code has untracked files: run make generate and commit" >&2; exit 1; }

build: ## build the static binary into bin/levqor
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/levqor

run: build ## build, migrate and serve on SQLite at :8080
	./$(BIN) serve

# PostgreSQL and Redis on 127.0.0.1 are used when they answer and no URL is set, so
# `make test` tests both engines on a machine that has them.
DEFAULT_PG_URL := postgres://postgres@127.0.0.1:5432/test?sslmode=disable
DEFAULT_REDIS_URL := redis://127.0.0.1:6379/0
# FIND_SERVICES sets the shell variables pg and rd to the test URLs: the LEVQOR_TEST_*
# variables, else those defaults when something answers there, else empty.
FIND_SERVICES = pg="$${LEVQOR_TEST_POSTGRES_URL:-}"; rd="$${LEVQOR_TEST_REDIS_URL:-}"; \
	if [ -z "$$pg" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then pg='$(DEFAULT_PG_URL)'; fi; \
	if [ -z "$$rd" ] && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then rd='$(DEFAULT_REDIS_URL)'; fi

test: ## run every test (PostgreSQL and Redis on 127.0.0.1 too when they answer)
	@$(FIND_SERVICES); \
	echo "PostgreSQL: $${pg:-not tested (none on 127.0.0.1:5432)}; Redis: $${rd:-not tested (none on 127.0.0.1:6379)}"; \
	LEVQOR_TEST_POSTGRES_URL="$$pg" LEVQOR_TEST_REDIS_URL="$$rd" go test -count=1 -race ./...
	$(MAKE) test-ts
	$(MAKE) test-web

# The TypeScript client (clients/ts): generated from the spec by openapi-typescript,
# built with tsc, tested with vitest against a real levqor process. Its packages are
# pinned in package-lock.json and installed by npm ci when missing or stale.

$(TS_CLIENT)/node_modules/.package-lock.json: $(TS_CLIENT)/package-lock.json
	npm ci --prefix $(TS_CLIENT) --no-audit --no-fund

$(TS_CLIENT)/dist/index.js: $(TS_CLIENT)/node_modules/.package-lock.json $(TS_CLIENT)/src/*.ts $(TS_CLIENT)/tsconfig.json
	cd $(TS_CLIENT) && npm run --silent build

test-ts: build $(TS_CLIENT)/dist/index.js ## the TypeScript client's tests against a real levqor
	cd $(TS_CLIENT) && npm run --silent check-version && npm run --silent typecheck && LEVQOR_BIN=../../$(BIN) npx vitest run

# The marketing site (web/): a Next.js static export built against clients/ts, served
# by levqor from LEVQOR_WEB_DIR, tested in Debian's Chromium through playwright-core.
WEB := web

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund

web: $(TS_CLIENT)/dist/index.js $(WEB)/node_modules/.package-lock.json ## build the site's static export into web/out
	cd $(WEB) && NEXT_TELEMETRY_DISABLED=1 npx next build

# One shell for the whole recipe: an `exit 0` on a line of its own ends only that line's shell.
test-web: ## browser tests of the site (skipped, saying so, without /usr/bin/chromium)
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "test-web: SKIPPED: /usr/bin/chromium is missing (apt-get install chromium; .ci/run installs it)"; \
	else \
		$(MAKE) build web && cd $(WEB) && LEVQOR_BIN=../$(BIN) node --test --test-concurrency=1 tests/; \
	fi

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
	go build -o bin/levqor-bench ./cmd/levqor-bench
	cd cmd/levqor-bench/riverpeer && go build -o ../../../bin/levqor-river-peer . # River, in a module of its own
	./bin/levqor-bench -bin $(BIN) -river-peer bin/levqor-river-peer

# CI's guard against performance regressions: levqor's intake against a bare net/http
# server in the same run (short rounds), failing below a generous floor (docs/benchmarks.md).
bench-guard: build ## fail when intake drops below 30 % of a bare server's (about 2x slower than usual)
	go build -o bin/levqor-bench ./cmd/levqor-bench && ./bin/levqor-bench -bin $(BIN) -only guard -strict

scale-demo: ## 3 instances on PostgreSQL + Redis behind a proxy: budgets, one SIGKILLed mid-load, rate limit, backup slots (PostgreSQL, Redis, pg_dump needed)
	@set -o pipefail; $(FIND_SERVICES); \
	LEVQOR_SCALE_DEMO=1 LEVQOR_TEST_POSTGRES_URL="$$pg" LEVQOR_TEST_REDIS_URL="$$rd" go test -count=1 -run '^TestScaleDemo$$' -v -timeout 10m ./cmd/levqor/ \
	  | grep -E '^(--- |PASS|FAIL|ok )|_test\.go:'

# The fault-injection suite (cmd/levqor/faults_test.go): real `levqor serve` processes on
# loopback, a fault injected under load (SIGKILL, Redis hung and refusing, a full disk,
# PostgreSQL stopped), numbers asserted; prints the table kept in docs/reliability.md.
test-faults: ## inject faults into real levqor processes and print the table (PostgreSQL and Redis needed)
	@set -o pipefail; $(FIND_SERVICES); \
	LEVQOR_FAULTS=1 LEVQOR_TEST_POSTGRES_URL="$$pg" go test -count=1 -run '^TestFault' -v -timeout 5m ./cmd/levqor/ \
	  | grep -E '^(=== RUN|--- |    --- |\||FAULT TABLE|PASS|FAIL|ok )|faults_test.go'

ci: lint check-generated test test-faults ## what .ci/run runs

clean:
	rm -rf bin bench.out $(OPENAPI_LINT)/node_modules $(TS_CLIENT)/node_modules $(TS_CLIENT)/dist $(WEB)/node_modules $(WEB)/.next $(WEB)/out $(WEB)/test-results
