#!/usr/bin/env bash
# Pin the Dockerfile's base image to the current digest of its tag (run monthly, and
# for a Debian or Python security fix; then rebuild, test, commit the one-line change).
# Needs one of: docker (buildx), crane, skopeo; and access to the registry.
set -euo pipefail
cd "$(dirname "$0")/.."

line=$(grep -E '^ARG PYTHON_IMAGE=' Dockerfile)
ref=${line#ARG PYTHON_IMAGE=}
tag=${ref%@*}

if command -v docker >/dev/null && docker buildx version >/dev/null 2>&1; then
  digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest.Digest}}' | tr -d '"')
elif command -v crane >/dev/null; then
  digest=$(crane digest "$tag")
elif command -v skopeo >/dev/null; then
  digest=$(skopeo inspect --format '{{.Digest}}' "docker://docker.io/library/$tag")
else
  echo "refresh-base-image: needs docker buildx, crane or skopeo" >&2
  exit 1
fi
if [[ ! $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "refresh-base-image: unexpected digest '$digest' for $tag" >&2
  exit 1
fi
sed -i -e "s|^ARG PYTHON_IMAGE=.*|ARG PYTHON_IMAGE=$tag@$digest|" -e '/^# PLACEHOLDER: /d' Dockerfile
echo "$tag@$digest"
