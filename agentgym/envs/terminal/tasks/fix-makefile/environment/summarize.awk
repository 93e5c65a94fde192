# prints: <file basename> <sum of the second column> (skips the header line)
FNR == 1 { next }
{ s += $2 }
END { n = split(FILENAME, p, "/"); print p[n], s + 0 }
