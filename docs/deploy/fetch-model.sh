#!/usr/bin/env bash
# Download the files an alias of a model points at, and verify every sha256 before use.
#
#   REGISTRY_URL=https://registry.example.org REGISTRY_TOKEN=mrt_... \
#     fetch-model.sh MODEL [ALIAS] [DEST]        # ALIAS defaults to production, DEST to ./model
#
# Exits non-zero (and leaves no unverified file in DEST) when the registry refuses, a download
# fails, or a file's sha256 differs from the one the registry recorded when it was approved.
# DEST/.registry-resolve.json keeps what was deployed: version, approvals, checksums.
# Needs bash, curl, sha256sum and python3 (for JSON); nothing else.
set -euo pipefail

: "${REGISTRY_URL:?set REGISTRY_URL to the registry, e.g. https://registry.example.org}"
: "${REGISTRY_TOKEN:?set REGISTRY_TOKEN to a read-only API token}"
model=${1:?usage: fetch-model.sh MODEL [ALIAS] [DEST]}
alias=${2:-production}
dest=${3:-./model}

quote() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
resolve_url="${REGISTRY_URL%/}/api/v1/models/$(quote "$model")/aliases/$(quote "$alias")/resolve"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! curl -fsS -H "Authorization: Bearer $REGISTRY_TOKEN" -o "$work/resolve.json" "$resolve_url"; then
  echo "fetch-model: the registry refused to resolve $model@$alias" >&2
  exit 1
fi

# One line per file: sha256, path, URL (tab-separated). Paths are checked again here: never
# write outside DEST, whatever the server says.
python3 - "$work/resolve.json" > "$work/files.tsv" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"# {data['model']}@{data['alias']} = version {data['version']['number']}", file=sys.stderr)
for f in data["files"]:
    path = f["path"]
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in path.split("/")):
        sys.exit(f"fetch-model: refusing unsafe path {path!r}")
    print(f"{f['sha256']}\t{path}\t{f['download_url']}")
PY

while IFS=$'\t' read -r sha path url; do
  mkdir -p "$work/files/$(dirname "$path")"
  # curl sends the token to the registry only: a redirect to another host (S3) drops it.
  curl -fsS -L -H "Authorization: Bearer $REGISTRY_TOKEN" -o "$work/files/$path" "$url"
  actual=$(sha256sum "$work/files/$path" | cut -d' ' -f1)
  if [ "$actual" != "$sha" ]; then
    echo "fetch-model: checksum mismatch for $path: expected $sha, got $actual" >&2
    exit 1
  fi
  echo "verified $path $sha" >&2
done < "$work/files.tsv"

mkdir -p "$dest"
cp -R "$work/files/." "$dest/"
cp "$work/resolve.json" "$dest/.registry-resolve.json"
echo "fetch-model: $model@$alias written to $dest, every sha256 verified" >&2
