# Trace Forward Influence against the distance between token and query,
# one line per token set (top-attention, top-entropy, random, evicted).
load sprintf('%s/common.gp', system('dirname ' . ARG0))
set xlabel 'distance t - j (bucket start)'
set logscale x 2
set logscale y
plot for [i=0:nblocks-1] datafile index i using 1:2 title columnheader(1) pointsize 1.2 linewidth 2
