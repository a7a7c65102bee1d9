#!/usr/bin/env bash
# Takes a file larger than one device call may carry (64 MiB with the working tree) over to the
# device machine in parts, one part per call while the machine stays warm.
#
#   here:    bash bench/gpu/carry_in_parts.sh split FILE [MiB]   # parts (default 48 MiB) into .parts/
#   then, once per part, here: bash bench/gpu/carry_in_parts.sh next   # moves the next part into .carry/
#            and a device call with carry [".carry"] running: bash bench/gpu/carry_in_parts.sh take
#   there:   bash bench/gpu/carry_in_parts.sh join OUT          # puts them together, checks sha256
#
# .parts/ and .carry/ must be git-ignored (.git/info/exclude). The parts collect in $PARTS_IN
# (default /tmp/squeeze-parts-in) on the device machine, outside the repo copy: that survives
# between calls while the machine is warm (an ignored folder inside the repo copy did not).
set -euo pipefail
IN=${PARTS_IN:-/tmp/squeeze-parts-in}  # on the device machine: outside the repo copy, kept while warm
cd "$(dirname "$0")/../.."
case "${1:-}" in
  split)
    f=$2; mib=${3:-48}
    rm -rf .parts .carry && mkdir -p .parts .carry
    split -b "${mib}M" -d -a 2 "$f" ".parts/$(basename "$f").part"
    sha256sum "$f" | awk '{print $1}' >".parts/$(basename "$f").sha256"
    ls .parts
    ;;
  next)
    rm -rf .carry && mkdir -p .carry
    p=$(ls .parts/*.part* 2>/dev/null | head -1 || true)
    [ -n "$p" ] || { echo "no parts left"; exit 1; }
    mv "$p" .carry/
    # the checksum travels with the last part
    [ -n "$(ls .parts/*.part* 2>/dev/null)" ] || cp .parts/*.sha256 .carry/
    ls .carry
    ;;
  take)
    mkdir -p "$IN" && cp .carry/* "$IN"/ && ls -l "$IN"
    ;;
  join)
    out=$2
    name=$(basename "$out")
    [ -f "$IN/$name.sha256" ] || { echo "no checksum for $name in $IN (last part not taken?)"; exit 1; }
    mkdir -p "$(dirname "$out")"
    cat $IN/"$name".part* >"$out.tmp"
    if [ "$(sha256sum "$out.tmp" | awk '{print $1}')" != "$(cat "$IN/$name.sha256")" ]; then
      echo "$name: sha256 mismatch (a part missing?)"; ls -l "$IN"; rm -f "$out.tmp"; exit 1
    fi
    mv "$out.tmp" "$out" && echo "$out: $(stat -c %s "$out") bytes, sha256 ok"
    ;;
  -h|--help) sed -n '2,14p' "$0" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
