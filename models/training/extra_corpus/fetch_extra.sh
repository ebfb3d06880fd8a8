#!/usr/bin/env bash
# fetch_extra.sh DEST [EXISTING_CORPUS_DIR ...]: rebuild the extra photo corpus (issue 14) from
# Debian packages into DEST (created; the package folders in it are replaced).
#
# Reads selection.tsv (next to this script): for each package, `apt-get download` (no install),
# unpack only the selected images plus debian/copyright (and Stellarium's landscape.ini /
# scenery3d.ini, which name the authors), delete the .deb, then run build_extra_manifest.py, which
# writes DEST/manifest.csv, DEST/manifest_rejected.csv and DEST/manifest_summary.json.
#
# Evaluation hold-out: the photos in <repo>/data/evalphotos (if present) and
# <repo>/resources/samples are passed as --eval-dir. Existing corpora to de-duplicate against
# (each DIR/manifest.csv that exists is passed as --existing-manifest): the extra arguments, and
# the colon-separated folders in $EXTRA_EXISTING_CORPORA.
#
# Needs apt-get (package lists present), dpkg-deb, GNU tar, unzip, and a Python with Pillow and
# numpy: $PYTHON if set, else <repo>/.venv/bin/python if present, else python3.
set -euo pipefail

if [ $# -lt 1 ] || [ -z "$1" ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: fetch_extra.sh DEST [EXISTING_CORPUS_DIR ...]" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
DEST=$1; shift
SEL=$HERE/selection.tsv
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=python3
fi

# Evaluation photos and existing corpora for build_extra_manifest.py.
MANIFEST_ARGS=()
[ -d "$ROOT/data/evalphotos" ] && MANIFEST_ARGS+=(--eval-dir "$ROOT/data/evalphotos")
MANIFEST_ARGS+=(--eval-dir "$ROOT/resources/samples")
EXISTING=("$@")
if [ -n "${EXTRA_EXISTING_CORPORA:-}" ]; then
  IFS=: read -ra from_env <<< "$EXTRA_EXISTING_CORPORA"
  EXISTING+=("${from_env[@]}")
fi
for dir in ${EXISTING[@]+"${EXISTING[@]}"}; do
  if [ -f "$dir/manifest.csv" ]; then
    MANIFEST_ARGS+=(--existing-manifest "$(cd "$dir" && pwd)/manifest.csv")
  else
    echo "note: $dir/manifest.csv not found, not used for de-duplication" >&2
  fi
done

mkdir -p "$DEST"; DEST=$(cd "$DEST" && pwd)
TMP=$DEST/.tmp; rm -rf "$TMP"; mkdir -p "$TMP"; trap 'rm -rf "$TMP"' EXIT
NICE="nice -n 19"
APT_OPTS=(-q); [ "$(id -u)" = 0 ] && APT_OPTS+=(-o APT::Sandbox::User=root)

# Extra members (tar wildcards) unpacked for the credits.
declare -A EXTRA=(
  [stellarium-data]="./usr/share/stellarium/landscapes/*/landscape.ini ./usr/share/stellarium/scenery3d/Sterngarten/scenery3d.ini"
)
for pkg in $(tail -n +2 "$SEL" | cut -f1 | sort -u); do
  echo "[$(date +%T)] $pkg"
  rm -rf "${DEST:?}/$pkg" "$TMP/x"; mkdir -p "$DEST/$pkg/_meta" "$TMP/x"
  (cd "$TMP" && $NICE apt-get download "${APT_OPTS[@]}" "$pkg" >/dev/null)
  deb=$(ls "$TMP/${pkg}"_*.deb)
  dpkg-deb -f "$deb" Version > "$DEST/$pkg/_meta/version"
  # member list: plain paths, and the containing archive for "archive!member" entries
  awk -F'\t' -v p="$pkg" 'NR>1 && $1==p {split($2,a,"!"); print "./" a[1]}' "$SEL" | sort -u > "$TMP/members"
  echo "./usr/share/doc/$pkg/copyright" >> "$TMP/members"
  wild=()
  if [ -n "${EXTRA[$pkg]:-}" ]; then
    set -f; wild=(--wildcards ${EXTRA[$pkg]}); set +f  # patterns for tar, not the shell
  fi
  $NICE dpkg-deb --fsys-tarfile "$deb" | $NICE tar -x -C "$TMP/x" -T "$TMP/members" ${wild[@]+"${wild[@]}"}
  rm -f "$deb"
  cp "$TMP/x/usr/share/doc/$pkg/copyright" "$DEST/$pkg/_meta/copyright"
  if [ "$pkg" = stellarium-data ]; then
    (cd "$TMP/x/usr/share/stellarium" && find . -name '*.ini' | while read -r f; do
       mkdir -p "$DEST/$pkg/_meta/$(dirname "$f")"; cp "$f" "$DEST/$pkg/_meta/$f"; done)
  fi
  awk -F'\t' -v p="$pkg" 'NR>1 && $1==p {print $2 "\t" $3}' "$SEL" | while IFS=$'\t' read -r src dst; do
    mkdir -p "$DEST/$pkg/$(dirname "$dst")"
    case $src in
      *'!'*) unzip -q -o -p "$TMP/x/${src%%!*}" "${src#*!}" > "$DEST/$pkg/$dst" ;;
      *) cp "$TMP/x/$src" "$DEST/$pkg/$dst" ;;
    esac
  done
  rm -rf "$TMP/x"
done
$NICE "$PY" "$HERE/build_extra_manifest.py" "$DEST" "$SEL" "${MANIFEST_ARGS[@]}"
