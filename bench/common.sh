# Shared by the bench/*.sh drivers (sourced): the median of numbers given as arguments, and a
# command's rate in items per second of wall time.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# rate N COMMAND...: N / the seconds COMMAND took (its output discarded).
rate() { local n=$1 start; shift; start=$(date +%s.%N); "$@" > /dev/null 2>&1; echo "$n / ($(date +%s.%N) - $start)" | bc -l; }
