# Shared settings of infokv's figures. Callers set: datafile, nblocks,
# outfile, term (png or svg), plottitle, ylabelt.
if (term eq 'png') {
    set terminal pngcairo size 960,600 enhanced font 'sans,11'
} else {
    set terminal svg size 960,600 enhanced font 'sans,11' background rgb 'white'
}
set output outfile
set datafile separator "\t"
set title plottitle noenhanced
set ylabel ylabelt
set grid
set key outside right top noenhanced font ",9"
set style data linespoints
