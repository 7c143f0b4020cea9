# Recall per layer at one budget, one line per policy.
load sprintf('%s/common.gp', system('dirname ' . ARG0))
set xlabel 'layer'
set xtics 1
plot for [i=0:nblocks-1] datafile index i using 1:2 title columnheader(1) pointsize 1.2 linewidth 2
