#!/usr/bin/env bash
# Builds Caddy with Vigil from this working tree with xcaddy, as xcaddy.json
# describes the build (Caddy version, plugins), then checks that the binary
# lists Vigil's modules. CI, the integration tests and the Dockerfile all
# build through this script.
#
# usage: scripts/xcaddy-build.sh [--dry-run] [OUTPUT]
#
#   OUTPUT      where to write the binary (default: ./caddy, relative to the
#               current directory)
#   --dry-run   print the xcaddy command line and the Go environment it would
#               run with, and build nothing (used to test the manifest reading)
#
# environment:
#   XCADDY                 xcaddy binary to use (default: xcaddy on PATH, else
#                          $(go env GOPATH)/bin/xcaddy, installed when missing)
#   XCADDY_VERSION         version `go install` fetches when xcaddy is missing
#                          (default v0.4.5)
#   VIGIL_MANIFEST_READER  jq or go: how xcaddy.json is read (default: jq when
#                          installed, else a small stdlib-only Go program)
#   CGO_ENABLED            default 0: a static binary that runs on any Linux
#                          of the same architecture
#
# Vigil itself is always built from this checkout (`--with MODULE=REPO_ROOT`,
# whatever version xcaddy.json names for it); the other plugins listed there
# are fetched at their versions.
#
# Why GOPROXY is chained with an empty file proxy: xcaddy runs
# `go get MODULE` even for a module replaced by a local path, and Go first asks
# the module proxy about MODULE. A proxy that does not have it may answer 403
# (a private mirror) or 404 (the public one, which then falls back to `direct`,
# a git fetch of a repository that may not exist or may not be reachable). Any
# such error stops the build. With "FIRST_PROXY|file://EMPTY_DIR", any error
# from the first proxy falls through to an empty directory that answers "not
# found", and Go then uses the local replacement. This is done always, not
# only when the first proxy misbehaves: the build is then the same on every
# machine and never goes to a VCS host. Every other module still comes from
# the first proxy in GOPROXY, and a module the proxy lacks fails the build,
# as it should for a reproducible release.
set -euo pipefail

usage() {
	if [ "${1:-2}" = 0 ]; then
		sed -n '7,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	else
		sed -n '7,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	fi
	exit "${1:-2}"
}

dry_run=0
out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--dry-run) dry_run=1 ;;
	-h | --help) usage 0 ;;
	-*)
		echo "xcaddy-build: unknown option $1" >&2
		usage
		;;
	*)
		[ -z "$out" ] || usage
		out=$1
		;;
	esac
	shift
done
out=${out:-./caddy}
case "$out" in
/*) ;;
*) out="$PWD/$out" ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
manifest="$root/xcaddy.json"
module=$(awk '$1 == "module" { print $2; exit }' "$root/go.mod")
if [ -z "$module" ]; then
	echo "xcaddy-build: no module line in $root/go.mod" >&2
	exit 1
fi

command -v go >/dev/null || {
	echo "xcaddy-build: go is not on PATH" >&2
	exit 1
}

# Everything temporary lives here (the empty proxy, the manifest reader,
# xcaddy's build folder through TMPDIR) and goes when the script ends, even
# when xcaddy fails.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-xcaddy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# read_manifest prints caddy_version on the first line, then one line per
# plugin: module_path, a tab, version ("" when absent).
read_manifest() {
	local reader=${VIGIL_MANIFEST_READER:-}
	if [ -z "$reader" ]; then
		if command -v jq >/dev/null; then reader=jq; else reader=go; fi
	fi
	case "$reader" in
	jq)
		jq -er '
			if (.caddy_version | type) != "string" or (.plugins | type) != "array"
			then error("want {\"caddy_version\": string, \"plugins\": [...]}")
			else .caddy_version, (.plugins[] | "\(.module_path // "")\t\(.version // "")")
			end' "$manifest"
		;;
	go)
		mkdir -p "$tmp/manifest"
		cat >"$tmp/manifest/go.mod" <<-'EOF'
			module manifestreader

			go 1.21
		EOF
		cat >"$tmp/manifest/main.go" <<-'EOF'
			// Command manifestreader prints xcaddy.json the way xcaddy-build.sh reads it.
			package main

			import (
				"encoding/json"
				"fmt"
				"os"
			)

			func main() {
				raw, err := os.ReadFile(os.Args[1])
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				var m struct {
					CaddyVersion *string `json:"caddy_version"`
					Plugins      *[]struct {
						ModulePath string `json:"module_path"`
						Version    string `json:"version"`
					} `json:"plugins"`
				}
				if err := json.Unmarshal(raw, &m); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				if m.CaddyVersion == nil || m.Plugins == nil {
					fmt.Fprintln(os.Stderr, `want {"caddy_version": string, "plugins": [...]}`)
					os.Exit(1)
				}
				fmt.Println(*m.CaddyVersion)
				for _, p := range *m.Plugins {
					fmt.Printf("%s\t%s\n", p.ModulePath, p.Version)
				}
			}
		EOF
		(cd "$tmp/manifest" && GOWORK=off GOFLAGS=-mod=mod go run . "$manifest")
		;;
	*)
		echo "xcaddy-build: VIGIL_MANIFEST_READER=$reader: want jq or go" >&2
		return 1
		;;
	esac
}

if ! plan=$(read_manifest); then
	echo "xcaddy-build: cannot read $manifest" >&2
	exit 1
fi
caddy_version=$(head -n 1 <<<"$plan")
if ! [[ "$caddy_version" =~ ^v2\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z.+-]*)?$ ]]; then
	echo "xcaddy-build: xcaddy.json caddy_version \"$caddy_version\": want a Caddy v2 release such as v2.11.9" >&2
	exit 1
fi

with=()
self=0
while IFS=$'\t' read -r path version; do
	if [ -z "$path" ] || [[ "$path" =~ [[:space:]@=] ]] || [[ "$version" =~ [[:space:]] ]]; then
		echo "xcaddy-build: xcaddy.json plugin \"$path\" version \"$version\": want a module path and an optional version" >&2
		exit 1
	fi
	if [ "$path" = "$module" ]; then
		self=1
		with+=(--with "$module=$root")
	elif [ -z "$version" ] || [ "$version" = latest ]; then
		with+=(--with "$path")
	else
		with+=(--with "$path@$version")
	fi
done < <(tail -n +2 <<<"$plan")
if [ "$self" != 1 ]; then
	echo "xcaddy-build: xcaddy.json does not list $module among its plugins" >&2
	exit 1
fi

# The Go environment of the build (see the top of this file).
caller_goproxy=$(go env GOPROXY)
first_proxy=$(cut -d, -f1 <<<"$caller_goproxy")
mkdir -p "$tmp/empty-goproxy"
GOPROXY="${first_proxy:-https://proxy.golang.org}|file://$tmp/empty-goproxy"
nosumdb=$(go env GONOSUMDB)
GONOSUMDB="${nosumdb:+$nosumdb,}$module"
CGO_ENABLED=${CGO_ENABLED:-0}
export GOPROXY GONOSUMDB CGO_ENABLED
export GOWORK=off

if [ "$dry_run" = 1 ]; then
	printf 'GOPROXY=%s\nGONOSUMDB=%s\nCGO_ENABLED=%s\n' "$GOPROXY" "$GONOSUMDB" "$CGO_ENABLED"
	printf 'xcaddy build %s --output %s' "$caddy_version" "$out"
	printf ' %s' "${with[@]}"
	printf '\n'
	exit 0
fi

# xcaddy: the one asked for, the one on PATH or in GOPATH/bin, else install it
# (through the GOPROXY the caller had, before the chaining above).
xcaddy_version=${XCADDY_VERSION:-v0.4.5}
xcaddy=${XCADDY:-}
if [ -z "$xcaddy" ]; then
	gobin=$(go env GOBIN)
	[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	if command -v xcaddy >/dev/null; then
		xcaddy=$(command -v xcaddy)
	elif [ -x "$gobin/xcaddy" ]; then
		xcaddy="$gobin/xcaddy"
	else
		echo "xcaddy-build: installing xcaddy $xcaddy_version into $gobin" >&2
		GOPROXY="$caller_goproxy" CGO_ENABLED=0 \
			go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$xcaddy_version"
		xcaddy="$gobin/xcaddy"
	fi
fi
echo "xcaddy-build: $("$xcaddy" version 2>/dev/null | head -n 1) ($xcaddy), $(go version)" >&2
echo "xcaddy-build: Caddy $caddy_version with$(printf ' %s' "${with[@]}" | sed 's/ --with / /g') -> $out" >&2

mkdir -p "$(dirname "$out")"
start=$SECONDS
(cd "$tmp" && TMPDIR="$tmp" "$xcaddy" build "$caddy_version" --output "$out" "${with[@]}")
echo "xcaddy-build: built in $((SECONDS - start))s" >&2

# The binary must carry Vigil: the app, the handler and the admin routes.
modules=$("$out" list-modules)
missing=0
for id in vigil http.handlers.vigil admin.api.vigil; do
	if ! grep -qxF "$id" <<<"$modules"; then
		echo "xcaddy-build: $out list-modules does not list $id" >&2
		missing=1
	fi
done
if [ "$missing" != 0 ]; then
	exit 1
fi
echo "xcaddy-build: $out ($("$out" version)) lists vigil, http.handlers.vigil, admin.api.vigil" >&2
