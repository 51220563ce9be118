# faults-table.awk reads `go test -v` output and prints the fault and
# security tests' tallies (internal/tally) as one table: inputs tried,
# refused, accepted and lost, per test and in total. It passes the test
# result lines through, so a failure still shows.
/ tally Test/ {
	for (i = 1; i <= NF; i++) if ($i == "tally") break
	name = $(i + 1)
	split($(i + 2), a, "="); split($(i + 3), r, "="); split($(i + 4), c, "="); split($(i + 5), l, "=")
	rows[++n] = name; tried[n] = a[2]; refused[n] = r[2]; accepted[n] = c[2]; lost[n] = l[2]
	next
}
/^(ok|FAIL)[ \t]+github\.com\// {
	pkg = $2; sub(/.*\/sitrep\//, "", pkg)
	for (k = done + 1; k <= n; k++) where[k] = pkg
	done = n
}
/^(--- |FAIL|ok|panic)|lost|committed|war rooms|log lines|survived|recorded|header|killed/ { print }
END {
	printf "\n%-22s %-46s %7s %8s %9s %5s\n", "package", "test", "tried", "refused", "accepted", "lost"
	for (k = 1; k <= n; k++) {
		printf "%-22s %-46s %7d %8d %9d %5d\n", where[k], rows[k], tried[k], refused[k], accepted[k], lost[k]
		T += tried[k]; R += refused[k]; A += accepted[k]; L += lost[k]
	}
	printf "%-22s %-46s %7d %8d %9d %5d\n", "total", "", T, R, A, L
	if (L > 0) exit 1
}
