#!/usr/bin/env bash
# Render every Graphviz source under doc/source/_static to an SVG beside it
# (claim-states.dot -> claim-states.svg).  The documentation includes the
# SVGs, so building it ("tox -e docs") needs no Graphviz; run this after
# editing a .dot file and commit both.  Needs "dot" (apt-get install
# graphviz).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
static="$top/doc/source/_static"

if ! command -v dot >/dev/null 2>&1; then
  echo "render-diagrams: dot not found; install Graphviz (apt-get install graphviz)" >&2
  exit 2
fi

found=0
while IFS= read -r -d '' source; do
  target="${source%.dot}.svg"
  dot -Tsvg "$source" -o "$target.tmp"
  mv "$target.tmp" "$target"
  echo "rendered ${target#"$top"/}"
  found=$((found + 1))
done < <(find "$static" -name '*.dot' -type f -print0 | sort -z)

if [ "$found" -eq 0 ]; then
  echo "render-diagrams: no .dot file under ${static#"$top"/}" >&2
  exit 1
fi
