# Entropy (left axis) and attention received per later query (right axis,
# log) along one trace; the dashed line ends the prompt.
# Data columns: position, entropy, entropy_topk, received, evolution.
# Extra: prompt (prompt length).
load sprintf('%s/common.gp', system('dirname ' . ARG0))
set xlabel 'position'
set y2label 'attention received per later query'
set logscale y2
set y2tics
set ytics nomirror
set style data lines
set arrow from prompt, graph 0 to prompt, graph 1 nohead dashtype 2 linecolor rgb 'gray40'
plot datafile using 1:2 title 'entropy (full)' linewidth 1.5, \
     datafile using 1:3 title 'entropy (top-k)' linewidth 1, \
     datafile using 1:4 axes x1y2 title 'attention received' linewidth 1.5
