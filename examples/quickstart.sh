#!/usr/bin/env bash
# The embedded default, end to end: build farol, create a farol directory, ingest the example
# reports and look at the result. Safe to run again: already-ingested reports are recognized.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-quickstart}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cargo build --release --quiet -p farol
farol=target/release/farol
step "$farol" init "$dir" --center "CERT Example" --country PT
cp examples/feeds/*.toml "$dir/feeds.d/"
# IP data and the constituency come before the reports, so that events are enriched and routed.
step "$farol" -d "$dir" ipdata load data/ipdata-sample/asn-ipv4-pt.csv
step "$farol" -d "$dir" ipdata load data/ipdata-sample/country-ipv4.csv
step "$farol" -d "$dir" org import examples/orgs.csv
# The examples contain two bad records on purpose: farol keeps them as rejects and exits 0.
step "$farol" -d "$dir" ingest --feed example-sinkhole examples/2024-06-01-event4_sinkhole-example.csv
step "$farol" -d "$dir" ingest --feed partner-intelmq examples/partner-events.jsonl
step "$farol" -d "$dir" events --limit 8
step "$farol" -d "$dir" events --asn 3243 --type infected-system --limit 5
step "$farol" -d "$dir" events --org "Universidade Exemplo" --limit 3
step "$farol" -d "$dir" lookup 193.136.119.242
# The e-mail each organization's contact would get now (nothing is sent: that needs
# [notify] from and an SMTP server in farol.toml).
step "$farol" -d "$dir" notify --dry-run
step "$farol" -d "$dir" org list
step "$farol" -d "$dir" reports
step "$farol" -d "$dir" reports show 1 --rejects 5
step "$farol" -d "$dir" feeds
printf '\nThe farol directory is %s/; try `%s -d %s events --help`.\n' "$dir" "$farol" "$dir"
