#!/usr/bin/env bash
# Same-run A/B of environment switches on one model: each round runs `squeeze bench` once per
# variant, in turn (A B C A B C ...), and prints every median; the last lines give each variant's
# median over the rounds.
# usage: bench/gpu/ab.sh MODEL.gguf "VAR=a" "VAR=b" ...   ("-" for the plain environment;
#        BIN=path in a variant runs that squeeze binary)
# env: SQUEEZE (default build-gpu/bin/squeeze), ROUNDS (3), P (0), N (256), REPS (3), DEVICE (cuda)
set -u
if [ $# -lt 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then sed -n 2,7p "$0"; exit 0; fi
M=$1; shift
SQ=${SQUEEZE:-build-gpu/bin/squeeze}
declare -A got
for r in $(seq 1 "${ROUNDS:-3}"); do
  for v in "$@"; do
    e=(); [ "$v" != - ] && read -ra e <<<"$v"
    sq=$SQ
    for x in "${e[@]}"; do [[ $x == BIN=* ]] && sq=${x#BIN=}; done
    t=$(env "${e[@]}" "$sq" bench -m "$M" --device "${DEVICE:-cuda}" -p "${P:-0}" -n "${N:-256}" -r "${REPS:-3}" 2>/dev/null |
        awk -F'|' '/ (tg|pp)[0-9]+ /{gsub(/ /,"",$7); split($7,a,"("); print a[1]}' | tail -1)
    echo "round $r  $v  ${t:-FAILED}"
    got[$v]="${got[$v]:-} ${t:-0}"
  done
done
for v in "$@"; do
  echo "median $v: $(echo ${got[$v]} | tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')  (${got[$v]} )"
done
