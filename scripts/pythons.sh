# Sourced by the scripts in this folder: find interpreters by version, newest first.
# Looks at python3.N on PATH and at every pyenv installation, so a machine with
# pyenv (where python3.12 may only be a shim for an unselected version) works too.

candidate_pythons() {
  local n
  for n in 15 14 13 12 11; do
    command -v "python3.$n" 2>/dev/null
  done
  command -v python3 2>/dev/null
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  ls -d "$root"/versions/*/bin/python3 2>/dev/null
}

# find_python MIN [MAX]: print the path of the newest working interpreter
# with MIN <= version (and version < MAX when given), e.g. find_python 3.12.
find_python() {
  local min=$1 max=${2:-99.0} best="" best_v="" py v
  while read -r py; do
    [ -n "$py" ] || continue
    v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
    version_ge "$v" "$min" || continue
    version_ge "$v" "$max" && continue
    if [ -z "$best" ] || version_gt "$v" "$best_v"; then best=$py; best_v=$v; fi
  done < <(candidate_pythons)
  [ -n "$best" ] && echo "$best"
}

version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }
version_gt() { [ "$1" != "$2" ] && version_ge "$1" "$2"; }

# make_venv DIR PYTHON PIP-ARGS...: create (or reuse) a virtualenv and install into it.
# The install is skipped when the arguments and pyproject.toml are those of the last one
# (a stamp in the virtualenv records them); the package is installed editable, so a code
# change needs no reinstall.
make_venv() {
  local dir=$1 py=$2; shift 2
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
  fi
  local stamp
  stamp=$({ printf '%s\n' "$@"; cat pyproject.toml; } | cksum)
  [ "$(cat "$dir/.installed" 2>/dev/null)" = "$stamp" ] && return 0
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  echo "$stamp" >"$dir/.installed"
}
