#!/usr/bin/env bash
# Print the path of a Python >= 3.12, or explain what is missing and exit 1.
# Order: $PYTHON, pyenv (honours .python-version), uv-managed, python3.13/3.12/python3 on PATH.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
if command -v pyenv >/dev/null 2>&1; then
  p=$(pyenv which python 2>/dev/null) && candidates+=("$p")
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9]' | sort -rV); do
    candidates+=("$(pyenv root)/versions/$v/bin/python")
  done
fi
if command -v uv >/dev/null 2>&1; then
  p=$(uv python find '>=3.12' 2>/dev/null) && candidates+=("$p")
fi
for name in python3.14 python3.13 python3.12 python3 python; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
for c in "${candidates[@]}"; do
  if [ -x "$c" ] && ok "$c"; then echo "$c"; exit 0; fi
done
cat >&2 <<'MSG'
error: bayescale needs Python >= 3.12 (PyMC 6 and ArviZ 1 require it) and none was found.
  Install one, e.g.:  pyenv install 3.12   |   uv python install 3.12   |   apt-get install python3.12 python3.12-venv
  or point to it:     make PYTHON=/path/to/python3.12 test
MSG
exit 1
