# The demo study over three seeds: the runs of `make demo` (seed 0, reused
# from the same work dir) plus seeds 1 and 2, for means, 95 % intervals and
# paired tests. Its report is in docs/demo_study/.
#   python tools/study.py run configs/studies/demo_3seeds.py
#   python tools/study.py report configs/studies/demo_3seeds.py \
#       --out docs/demo_study
_base_ = './demo.py'

seeds = [0, 1, 2]
