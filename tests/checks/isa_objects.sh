#!/usr/bin/env bash
# The per-instruction-set kernel objects (compiled with -mavx2 / -mavx512*) may export only their
# kernel table: a weak or COMDAT symbol there (an inline function or template instance emitted
# out of line) could be the copy the linker keeps for every caller, and run AVX2 or AVX-512
# instructions on a CPU without them.
#   isa_objects.sh OBJECT...   (the strata_cpu objects; the per-ISA ones are picked by name)
set -euo pipefail
checked=0
fail=0
for o in "$@"; do
  case "$(basename "$o")" in
    *_avx2.cpp.o | *_avx512.cpp.o | *_avx512bf16.cpp.o | *_vnni.cpp.o | *_vbmi.cpp.o | *_avxvnni.cpp.o) ;;
    *) continue ;;
  esac
  checked=$((checked + 1))
  # Global definitions: T/D/B/R (strong) must be the table function only; W/V/u (weak, unique) none.
  while read -r kind name; do
    case "$kind" in
      W | V | u)  # data every C++ object may carry: DW.ref.* (the exception personality pointer),
        # and under clang's UBSan the type descriptors of function types ("typeinfo for void (...)")
        [[ "$name" == DW.ref.* || "$name" =~ ^typeinfo\ (name\ )?for\ .*\) ]] ||
          { echo "FAIL: $(basename "$o"): weak/unique symbol $name"; fail=1; } ;;
      T) [[ "$name" =~ ^strata::kern::[a-z0-9_]+_(avx2|avx512|avx512bf16|vnni|vbmi|avxvnni)\(\)$ ]] ||
        { echo "FAIL: $(basename "$o"): exports $name"; fail=1; } ;;
      D | B | R) echo "FAIL: $(basename "$o"): exports data $name"; fail=1 ;;
    esac
  done < <(nm -C --defined-only "$o" | awk '{k=$2; $1=""; $2=""; sub(/^  /, ""); print k, $0}')
done
if [ "$checked" -eq 0 ]; then
  echo "FAIL: no per-instruction-set objects among the arguments"
  exit 1
fi
[ "$fail" -eq 0 ] && echo "ok: $checked per-instruction-set objects export only their kernel tables"
exit "$fail"
