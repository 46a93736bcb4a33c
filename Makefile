# onebox: the everyday commands. `make` alone lists them.

CARGO  ?= cargo
CONFIG ?= config/onebox.toml

.DEFAULT_GOAL := help
.PHONY: help run check test zero-loss test-cluster tls-scan lint fmt bench bench-dns bench-bigzone bench-dnssec bench-web bench-proxy bench-app bench-backup release deb

help: ## Show this list
	@echo "make TARGET, where TARGET is one of:"
	@awk -F ':.*## ' '/^[a-z-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# `make run` and `make check` serve as whoever runs them, root included (a development box):
# onebox refuses to keep root unless told so explicitly (the top-level key `user`).
RUN_AS ?= $(shell id -un)

run: ## Build and serve the shipped config: DNS on 127.0.0.1:1053 (Ctrl-C stops)
	ONEBOX_USER=$(RUN_AS) $(CARGO) run --bin onebox -- --config $(CONFIG) serve

check: ## Load the config and every zone as `serve` would, and report (onebox check)
	ONEBOX_USER=$(RUN_AS) $(CARGO) run --quiet --bin onebox -- --config $(CONFIG) check

test: lint ## The whole suite: formatting, clippy, then every test (what CI runs)
	$(CARGO) test

zero-loss: ## The zero-loss proof: reload, upgrade, restart, failed upgrade under load (a minute or two)
	$(CARGO) test --test main -- --ignored --nocapture lifecycle::zero_loss

test-cluster: ## Beyond one box: HAProxy, two boxes, Galera in namespaces; a box, a DB node, an upgrade fail under load (root; minutes)
	$(CARGO) test --test main -- --ignored --nocapture cluster::

tls-scan: ## TLS quality: testssl.sh against onebox serving an ACME certificate (minutes; CI runs it)
	$(CARGO) test --test main -- --ignored --exact acme::tls_scan::testssl_finds_nothing_high_but_what_a_test_ca_causes

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

bench: bench-dns bench-bigzone bench-dnssec bench-web bench-proxy bench-app bench-backup ## Every benchmark (each compares onebox with its reference server)

bench-dns: ## DNS: dnsperf against onebox and NSD on the same zone
	bash tests/bench/dns.sh

bench-bigzone: release ## DNS: a zone of a million records loaded by onebox and by NSD (time, memory)
	bash tests/bench/bigzone.sh

bench-dnssec: release ## DNSSEC: DO=1 against DO=0 queries, onebox signing beside NSD serving ldns-signzone's zone
	bash tests/bench/dnssec.sh

bench-web: release ## Web: wrk and h2load against onebox and nginx serving the same site
	bash tests/bench/web.sh

bench-proxy: release ## Reverse proxy: wrk and h2load through onebox's [[web.proxy]] and nginx's proxy_pass to one upstream
	bash tests/bench/proxy.sh

bench-app: release ## App: onebox's /blog and /api/posts on MariaDB beside raw primary-key SELECTs
	bash tests/bench/app.sh

bench-backup: release ## Backup: time and size of onebox backup and restore of 100 000 posts, beside SQLite's online backup
	bash tests/bench/backup.sh

deb: release ## Build the Debian package: target/debian/onebox_<version>_<arch>.deb
	bash deploy/debian/build.sh

release: ## Build the optimised binary: target/release/onebox
	$(CARGO) build --release --bin onebox
