# make run    install, build and start the service (on the embedded simulator unless OVIRT_URL is set)
# make test   install, build (type-check), lint, architecture rules, format check, then every test
# make bench  benchmarks (see README)
# make lint  oxlint, the layering rules and prettier alone; make format rewrites the format
# make deps-report  which pinned dependencies have newer releases, and which of those need a newer Node than ours
.PHONY: install build run test lint format bench bench-compare soak clean test-deps readme-config deps-report

NPM ?= npm
STAMP := node_modules/.install-stamp

$(STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: $(STAMP)

build: install
	$(NPM) run build

# Readable logs at a terminal unless KSM_SCORER_LOG_FORMAT says otherwise (services keep JSON).
run: build
	KSM_SCORER_LOG_FORMAT=$${KSM_SCORER_LOG_FORMAT:-pretty} $(NPM) start

# Debian packages the tests call (Python gRPC and protoc, openssl, tini, promtool, systemd-analyze),
# installed with apt when missing (test/install-deps.sh says which and why).
test-deps:
	bash test/install-deps.sh

test: build test-deps lint
	npx tsc -p test
	npx vitest run

# Lint (oxlint with typescript-eslint's type-checked rules), the architecture of src/ (scripts/architecture.mjs: layers, cycles, file size) and the format (prettier); zero warnings.
lint: build
	node scripts/architecture.mjs
	npx oxlint src test scripts
	npx prettier --check .

# Rewrites every file prettier formats.
format: install
	npx prettier --write .

# Rewrites the configuration tables from the settings table in src/config/settings.ts: every setting in
# docs/configuration.md, the ones people set first (FIRST_SETTINGS) in the README.
readme-config: build
	node -e "const fs=require('fs');const c=require('./dist/config/markdown');for(const [f,t] of [['docs/configuration.md',c.settingsMarkdown()],['README.md',c.settingsMarkdown(c.FIRST_SETTINGS)]]){const r=fs.readFileSync(f,'utf8');fs.writeFileSync(f,r.replace(/(<!-- settings-table:begin[^>]*-->)[^]*?(<!-- settings-table:end -->)/,(m,a,b)=>a+'\\n'+t+'\\n'+b))}"

bench: build
	bash test/bench/run.sh

# Minutes of mixed load while the engine changes; fails when RSS grows past a margin (SOAK_SECONDS, SOAK_RSS_MARGIN_MB).
soak: build
	npx tsc -p tsconfig.bench.json
	node build/test/bench/soak.js

# ScoreHosts throughput of this build against another commit's, in one run: make bench-compare BASELINE=<commit>
bench-compare: build
	bash test/bench/compare.sh $(BASELINE)

# npm outdated exits 1 when anything is outdated: that is the report, not a failure.
deps-report: install
	$(NPM) outdated || true
	node scripts/deps-report.mjs

clean:
	rm -rf dist src/generated node_modules
