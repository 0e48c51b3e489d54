# The two commands the README opens with: `make demo` and `make test`.
# Both install what is missing first (scripts/ensure-deps.sh).
SHELL := /bin/bash
export PATH := /usr/local/lib/smbfleet-node/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: deps test check lint format-check typecheck proto proto-check unit integration demo bench

deps:
	@scripts/ensure-deps.sh

## test: everything CI runs; the output ends with vitest's summary.
test: deps check
	vitest run

check: lint format-check typecheck proto-check

lint:
	eslint --max-warnings 0 .

format-check:
	prettier --check . --log-level warn

typecheck:
	tsc --noEmit -p tsconfig.json

## proto: regenerate shared/gen and the committed image after a schema change.
proto:
	buf lint proto && buf generate --template proto/buf.gen.yaml proto && buf build proto -o proto/image.binpb

## proto-check: lint, no breaking change against the committed image, and
## generated code identical to what the schema produces.
proto-check:
	buf lint proto && buf breaking proto --against proto/image.binpb
	@tmp=$$(mktemp -d) && buf generate --template proto/buf.gen.yaml -o "$$tmp" proto && \
	  if ! diff -r "$$tmp/shared/gen" shared/gen; then \
	    echo "shared/gen is stale: run 'make proto' and commit"; rm -rf "$$tmp"; exit 1; fi; rm -rf "$$tmp"

unit: deps
	vitest run --project unit

integration: deps
	vitest run --project integration

demo: deps
	node scripts/demo.ts

bench: deps
	npm run bench:agent
