# Recall or output error against the budget, one line per policy.
# Data: blocks of "series name" then "budget_tokens<TAB>value" rows.
# Extra: logy (1 for a log y axis).
load sprintf('%s/common.gp', system('dirname ' . ARG0))
set xlabel 'budget (slots kept per layer and KV head)'
set logscale x 2
if (exists('logy') && logy) { set logscale y }
plot for [i=0:nblocks-1] datafile index i using 1:2 title columnheader(1) pointsize 1.2 linewidth 2
