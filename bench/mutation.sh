#!/usr/bin/env bash
# Mutation testing of the modules that guard users, each against its own model-free tests (mutmut).
#
# For each module: a copy of the work tree in a temporary folder, mutmut told to mutate only
# that module's files and to run only the model-free tests that cover them; then the score,
# killed / (all mutants - skipped), and every surviving mutant's diff, printed and saved in
# $OUT/NAME.txt. A survivor is a test gap or an equivalent mutant: bench/RESULTS.md says which.
#
# Usage: bash bench/mutation.sh [NAME...]    NAME: one of the keys of MODULES below (default: all)
#   needs mutmut (pip install mutmut==3.8.1; MUTMUT_PATH=DIR puts a --target install on the path)
#   CPU heavy: run it alone (flock /tmp/ozfig-cpu.lock bash bench/mutation.sh guard), one module
#   at a time; CHILDREN (default 1) mutants run at once, MAX_SECONDS (default 1200) bounds each.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PY=${PYTHON:-python}
CHILDREN=${CHILDREN:-1}
MAX_SECONDS=${MAX_SECONDS:-1200}
OUT=${OUT:-/tmp/ozfig-mutation}
export PYTHONPATH="${MUTMUT_PATH:+$MUTMUT_PATH:}${PYTHONPATH:-}"

# NAME -> "files to mutate | model-free tests that cover them"
declare -A MODULES=(
  [guard]="server/search/guard.py server/search/addresses.py|tests/server/test_search_guard.py tests/server/test_search_addresses.py"
  [neutralize]="server/neutralize.py|tests/server/test_neutralize.py tests/server/test_neutralize_automaton.py tests/server/test_search_context.py"
  [chat_tokens]="ozfig/chat_tokens.py|tests/ozfig/test_chat_tokens.py tests/ozfig/test_chat_tokens_cuts.py"
  [chat_template]="ozfig/chat_template.py|tests/ozfig/test_chat_template.py tests/ozfig/test_chat_template_exact.py"
  [access]="server/api/access.py|tests/server/test_access.py tests/server/test_access_rules.py"
  [gate]="server/api/gate.py|tests/server/test_access.py tests/server/test_gate_rules.py"
  [options]="ozfig/options.py|tests/ozfig/test_options.py tests/server/test_settings.py tests/server/test_readme_settings.py"
)
ORDER=(guard neutralize chat_tokens chat_template access gate options)

toml_list() { printf '"%s", ' "$@" | sed 's/, $//'; }

mkdir -p "$OUT"
for name in "${@:-${ORDER[@]}}"; do
  spec=${MODULES[$name]:?"unknown module $name (one of: ${ORDER[*]})"}
  read -r -a files <<<"${spec%%|*}"
  read -r -a tests <<<"${spec#*|}"
  work=$(mktemp -d -t "ozfig-mutation-$name.XXXXXX")
  git ls-files -z --cached --others --exclude-standard | tar -c --null -T - -f - | tar -x -C "$work" -f -
  cat >>"$work/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = [$(toml_list "${files[@]}")]
pytest_add_cli_args_test_selection = [$(toml_list "${tests[@]}")]
also_copy = ["ozfig", "server", "convert", "tests", "README.md", "docs"]
# model-free tests only; the cross-version check runs the module file under other Pythons, which
# cannot import mutmut's trampolines
pytest_add_cli_args = ["-m", "not model", "-p", "no:cacheprovider", "-q", "-k", "not the_table_is_the_same_on_every_python_here"]
EOF
  start=$(date +%s)
  status=0
  (cd "$work" && timeout "$MAX_SECONDS" "$PY" -m mutmut run --max-children "$CHILDREN" >mutmut.log 2>&1) || status=$?
  (cd "$work" && "$PY" -m mutmut export-cicd-stats >/dev/null 2>&1) || true
  seconds=$(( $(date +%s) - start ))
  report="$OUT/$name.txt"
  {
    echo "# $name: ${files[*]}  (tests: ${tests[*]}; mutmut exit $status; $seconds s)"
    "$PY" - "$work/mutants/mutmut-cicd-stats.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
tested = s["total"] - s["skipped"]
print(f"score {100 * (s['killed'] + s['timeout']) / tested:.1f}%: {s['killed']} killed, {s['timeout']} timeout, "
      f"{s['survived']} survived, {s['no_tests']} without a covering test, {s['suspicious']} suspicious, "
      f"{s['skipped']} skipped, of {s['total']}")
EOF
    (cd "$work" && "$PY" -m mutmut results | sed 's/^ *//' | while read -r line; do
      mutant=${line%%:*}
      echo; echo "## $line"
      "$PY" -m mutmut show "$mutant" 2>/dev/null | sed -n '3,$p' | grep '^[-+]' | grep -v '^[-+][-+]' || true
    done)
  } >"$report" 2>&1
  head -2 "$report"
  [ "$status" -eq 0 ] || { echo "mutmut failed (exit $status): $work/mutmut.log"; tail -30 "$work/mutmut.log"; }
  [ -n "${KEEP:-}" ] && echo "work: $work" || rm -rf "$work"
done
