# Sitrep — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/bot
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME  ?= 20s

.PHONY: help build run test test-short check lint bench bench-load fuzz faults measure clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

build: ## build the static binary into bin/bot
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bot

run: ## run Sitrep in the terminal (same as go run ./cmd/bot)
	$(GO) run ./cmd/bot

test: check ## vet, format check, and every test with the race detector (real Prometheus/Alertmanager when installed)
	$(GO) test -race -count=1 -timeout 20m ./...

test-short: check ## the same without the tests that run real Prometheus and Alertmanager (about 2 minutes shorter)
	$(GO) test -race -count=1 -short ./...

check: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint: check ## staticcheck (installed from the Go module proxy on first use)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench: ## benchmarks: store vs a bare bbolt update, interleaved (ratio x-bare)
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/...

bench-load: build ## PagerDuty webhooks and Alertmanager storms at rising rates to saturation (with CPU per request), next to bare handlers doing the same request work and the same bbolt write (and one storing only the body) through DB.Batch, and bbolt's own limit; a 1,000-notification storm; Slack ack latency, and war rooms and header edits to saturation with the tiers off, next to a bare client
	$(GO) run ./bench/load -bot $(BIN)

fuzz: ## fuzz each parser for FUZZTIME (default 20s each; a count such as 30000x also works): commands, PagerDuty, signatures, Alertmanager, runbooks, Slack escaping
	$(GO) test ./internal/commands -run '^$$' -fuzz FuzzHandle -fuzztime $(FUZZTIME)
	$(GO) test ./internal/pagerduty -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/pagerduty -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME)
	$(GO) test ./internal/alertmanager -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/runbooks -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/slackbot -run '^$$' -fuzz FuzzEscape -fuzztime $(FUZZTIME)

FAULTS := TestSlowStepBlocksNothing|TestEveryAcknowledgedWriteIsSynced|TestDamagedPages|TestCrash|TestKillDuring|TestKillNine|TestLockTimeout|TestDatabaseHeld|TestDiskFull|TestBurstOf30|TestHundredWarRooms|TestFortyDeclares|TestSlackOutage|TestLostAnswer|TestRestartResumes|TestHeaderKeepsUp|TestSenderKeepsOrder|TestSenderHonours|TestSlackDown|TestPagerDutyDown|TestUnreachableOrSlow|TestRefusals|TestRedelivery|TestSecretsNeverLogged|TestGuardrails|TestAlertStorm|TestBacklogCheck|TestOutsideText|TestOutputsAreNever|TestAdminAnswers|TestOpenAlertmanager|TestDamaged|TestOneBadRecord|TestOnlyRegular|TestBigGroups|TestNotesNever|TestOldEvents|TestRoutes|TestDoneButNotRemoved|TestRevokedToken|TestUnknownBotUser|TestLostAnswerToAPost|TestRefusalIsOn

faults: ## the fault and security tests, then a table of the inputs they tried, refused, accepted and lost; then every parser fuzzed for FUZZTIME
	@out=$$(mktemp); $(GO) test -count=1 -v -run '$(FAULTS)' ./... >$$out 2>&1; rc=$$?; \
	  awk -f scripts/faults-table.awk $$out || rc=1; rm -f $$out; exit $$rc
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

measure: build ## idle RSS and time to first output of the binary, with /usr/bin/time -v
	@scripts/measure-startup.sh $(BIN)

clean: ## remove build output
	rm -rf bin
