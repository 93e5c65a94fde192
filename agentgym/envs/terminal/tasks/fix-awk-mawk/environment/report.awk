# report.awk: input lines "name, score" (blank lines and lines starting with # are ignored).
# Output: one line per distinct name (trimmed, lowercased): "<name> <total score>", sorted by name (byte order),
# then "TOTAL <sum of all scores>".
/^#/ || NF == 0 { next }
{
  split($0, f, ",")
  name = tolower(gensub(/^[ \t]+|[ \t]+$/, "", "g", f[1]))
  total[name] += f[2]
  all += f[2]
}
END {
  n = asorti(total, names)
  for (i = 1; i <= n; i++) print names[i], total[names[i]]
  print "TOTAL", all
}
